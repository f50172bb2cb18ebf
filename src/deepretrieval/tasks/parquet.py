"""Task ``parquet``: a dataset in verl's parquet layout, judged as its family is. ``--data`` is one file
(its rows name their splits) or a folder of them (one split per file: ``train``, ``test``, ``val``,
``test_full``...).

The DeepRetrieval paper's preprocessed files (its Hugging Face dataset repo ``DeepRetrieval/datasets``, its
``code/data/...``) are read as the seed wrote them: each row's data source says the dataset (``pubmed``,
``nq_serini``, ``scifact_train``, ``spider_val``...), its stored raw prompt is the example's prompt, its
``reward_model.ground_truth`` the truth (see ``tasks.parquet_rows``). The family follows:

=============  ============================================  =========================================
family         judged by (default)                           needs
=============  ============================================  =========================================
literature     ``pubmed`` / ``ctgov`` (the seed's engines)   nothing (``corpus`` for the local engine)
evidence       BM25 over a passage collection                ``corpus``: psgs_w100.tsv or JSONL
beir           BM25 over the collection                      ``corpus``: the BEIR folder or corpus.jsonl
sql            the sandboxed executor                        ``databases``: <db_id>/<db_id>.sqlite root
=============  ============================================  =========================================

SciFact's files hold one row per (claim, relevant document) pair, as the seed trained and evaluated on
them: a row's NDCG@10 is the seed's pairwise value and the mean over rows is its number
(``seed_pair_ndcg@10``, the default metric there, beside the @50 its training reward reads); ``group: true``
merges the pairs into one example per claim for the standard NDCG. Rows written by ``deepretrieval data export-verl`` are read back too (seed
layout with ``--recipe seed``, or chat messages).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from deepretrieval.retrievers.base import Retriever
from deepretrieval.retrievers.corpus import corpus_file
from deepretrieval.tasks import TaskFamily
from deepretrieval.tasks.base import Example, Task, TaskOptions
from deepretrieval.tasks.parquet_rows import (
    PAIR_DATASETS,
    Layout,
    ParquetDataError,
    export_example,
    group_pairs,
    layout,
    parquet_files,
    read_table,
    seed_example,
)
from deepretrieval.tasks.prompts import seed_template_name

FAMILY_TEMPLATES = {"literature": "literature", "evidence": "evidence", "beir": "classic_ir", "sql": "sql"}


class ParquetOptions(TaskOptions):
    """``task.options`` of a parquet dataset."""

    corpus: str | None = Field(
        None,
        description="the collection its retriever searches: a BEIR folder, corpus.jsonl or psgs_w100.tsv",
    )
    databases: str | None = Field(
        None,
        description="SQL: the folder holding <db_id>/<db_id>.sqlite (the seed's rows name its own paths)",
    )
    metrics: tuple[str, ...] | None = Field(
        None, description="default: the family's (SciFact: seed_pair_ndcg@10)"
    )
    group: bool = Field(False, description="merge the rows of one query (SciFact's pairs) into one example")
    k: int = Field(3000, gt=0, description="literature: results scanned for recall")
    date_limits: bool | None = Field(None, description="literature: search up to each review's date")
    depth: int = Field(3000, gt=0, description="evidence: hits scanned for an answer-bearing passage")
    name: str | None = None


class Loaded:
    """A parquet dataset read once: its splits, family, and seed prompt (when every row shares one)."""

    def __init__(self, data: Path, options: ParquetOptions):
        databases = Path(options.databases) if options.databases else None
        self.splits: dict[str, list[Example]] = {}
        layouts: set[tuple[str, str | None]] = set()
        prefills: set[str] = set()
        for stem, path in parquet_files(data).items():
            for index, row in enumerate(read_table(path)):
                where = f"{path} row {index}"
                kind: Layout = layout(row, where)
                layouts.add((kind.family, kind.seed.name if kind.seed else None))
                if kind.seed is not None:
                    prefills.add(kind.seed.prefill)
                    example = seed_example(row, kind.seed, where, databases)
                else:
                    example = export_example(row, where)
                split = stem or str((row.get("extra_info") or {}).get("split") or "train")
                self.splits.setdefault(split, []).append(example)
        families = {family for family, _ in layouts}
        if len(families) != 1 or len(prefills) > 1:
            raise ParquetDataError(
                f"{data} mixes datasets that cannot share one task: {sorted(map(str, layouts))}"
            )
        self.family = families.pop()
        seeds = sorted({seed for _, seed in layouts if seed})
        self.seed = seeds[0] if seeds else None
        self.datasets = seeds
        if options.group:
            self.splits = {split: group_pairs(examples) for split, examples in self.splits.items()}
        for split, examples in self.splits.items():
            repeated = [i for i, n in Counter(e.id for e in examples).items() if n > 1]
            if repeated:
                raise ParquetDataError(f"{data}: split {split!r} repeats example ids, e.g. {repeated[:3]}")

    @property
    def template(self) -> str:
        """The stored prompts for seed files, else the family's own template."""
        if self.seed is None:
            return FAMILY_TEMPLATES[self.family]
        return seed_template_name(self.seed, as_given=True)

    @property
    def pairs(self) -> bool:
        return bool(set(self.datasets) & PAIR_DATASETS)


@lru_cache(maxsize=8)
def _load(data: str, stamp: tuple, options_json: str) -> Loaded:
    return Loaded(Path(data), ParquetOptions.model_validate_json(options_json))


def load(data: Path | None, options: ParquetOptions) -> Loaded:
    """The dataset at ``data``, read once per file contents and options."""
    if data is None:
        raise ParquetDataError("task parquet needs --data: a parquet file or a folder of them")
    files = parquet_files(Path(data))
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files.values())
    return _load(str(data), stamp, options.model_dump_json())


def default_retriever(data: Path | None, options: ParquetOptions) -> str | None:
    """The seed's engine for literature files (PubMed, ClinicalTrials.gov), BM25 for the collections, none
    for SQL (a database judges it)."""
    loaded = load(data, options)
    if loaded.family == "sql":
        return None
    if loaded.family == "literature":
        if options.corpus:
            return "boolean"
        return "ctgov" if loaded.seed and loaded.seed.startswith("ctgov") else "pubmed"
    return "bm25"


def corpus_path(data: Path | None, options: ParquetOptions) -> Path | None:
    """``options.corpus`` (a BEIR folder means its corpus.jsonl); required where a local index judges."""
    loaded = load(data, options)
    if options.corpus:
        return corpus_file(options.corpus)
    if loaded.family in ("beir", "evidence"):
        what = (
            "the BEIR folder or corpus.jsonl" if loaded.family == "beir" else "the passages (psgs_w100.tsv)"
        )
        raise ParquetDataError(
            f"{data} holds {loaded.family} examples without their collection: pass {what} with "
            "--option corpus=PATH (task.options.corpus)"
        )
    return None


def build(data: Path | None, options: ParquetOptions, retriever: Retriever | None) -> Task:
    """The task of the dataset's family over its examples."""
    loaded = load(data, options)
    name = options.name or (loaded.seed or Path(str(data)).stem)
    if loaded.family == "sql":
        from deepretrieval.tasks.parquet_sql import ParquetSqlTask

        task: Task = ParquetSqlTask(name, loaded.splits, loaded.datasets, options.metrics)
    elif loaded.family == "literature":
        from deepretrieval.tasks.literature import LiteratureTask

        task = LiteratureTask(name, loaded.splits, retriever, options.k, options.date_limits, options.metrics)
    elif loaded.family == "evidence":
        from deepretrieval.tasks.evidence import SQUAD_MISS, EvidenceTask

        metrics = options.metrics or ("hits@1", "hits@5", "hits@20")
        miss = SQUAD_MISS if loaded.seed == "squad" else None
        task = EvidenceTask(name, loaded.splits, retriever, metrics, options.depth, miss_reward=miss)
    else:
        from deepretrieval.tasks.retrieval import RetrievalTask

        # pair rows: the seed's evaluation form @10 and its training reward's @50 (reward.scheme seed)
        pairs = ("seed_pair_ndcg@10", "seed_pair_ndcg@50")
        default = pairs if loaded.pairs and not options.group else ("ndcg@10", "recall@100")
        task = RetrievalTask(name, loaded.splits, retriever, options.metrics or default)
    task.default_template = loaded.template
    return task


FAMILY = TaskFamily(
    template="classic_ir",
    options=ParquetOptions,
    build=build,
    corpus=corpus_path,
    retriever=default_retriever,
)
