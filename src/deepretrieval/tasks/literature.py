"""Literature search (systematic reviews): the policy writes a Boolean query for a search engine from a
review description (a PICO statement, or a review title and objective); recall of the review's included
studies among the top K results is the outcome (the seed's headline task).

Data: BEIR-style folders (``queries.jsonl`` with ``metadata``, ``qrels/<split>.tsv``, ``corpus.jsonl``
when the documents are local), e.g. ``literature/pubmed-pico``, ``ctgov-pico``, ``clef-tar-2017``. The
engine is the retriever: ``pubmed`` or ``ctgov`` (live APIs, or a stand-in / mirror through
``engine_url``) or ``boolean`` (the local engine over the folder's corpus). On engines that can filter
by date, each review is searched up to its own publication date (``metadata.pub_date``), so a policy can
never find studies from the review's future.

Outcomes: ``recall@K`` (K = 3,000 by default, as in the seed), ``precision`` (relevant among the results
returned, at most K) and ``retrieved`` (how many documents the query matched: a Boolean query can
match 5 or 50,000). Reward: the seed's recall tiers (see ``deepretrieval.rewards.RecallTiers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from deepretrieval.metrics import Metric
from deepretrieval.retrievers.base import DateRange, Retriever
from deepretrieval.tasks import TaskFamily
from deepretrieval.tasks.base import Example, Failure, Judgment, TaskOptions
from deepretrieval.tasks.beir import DataError, qrels_files, read_jsonl, read_qrels
from deepretrieval.tasks.retrieval import RetrievalTask

DATE_ENGINES = frozenset({"pubmed", "ctgov"})
SET_KEYS = ("precision", "retrieved")
"""Outcomes of the whole result list: relevant among the returned documents, and how many the query matched."""
ENGINE_NAMES = {"pubmed": "PubMed", "ctgov": "ClinicalTrials.gov"}


class LiteratureOptions(TaskOptions):
    """``task.options`` of literature search."""

    k: int = Field(3000, gt=0, description="results scanned for recall (the seed: 3,000)")
    metrics: tuple[str, ...] | None = Field(
        None,
        description="ranked metrics (recall@200, ndcg@10...) and 'precision' / 'retrieved' "
        "(default: recall@K, precision, retrieved)",
    )
    date_limits: bool | None = Field(
        None, description="search each review up to its publication date (default: on engines that can)"
    )
    name: str | None = None

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("name at least one metric")
        return tuple(m if m in SET_KEYS else str(Metric.parse(m)) for m in value)


class LiteratureTask(RetrievalTask):
    """Reviews with included studies as truth; an answer is a Boolean query for the engine."""

    def __init__(
        self,
        name: str,
        splits: dict[str, list[Example]],
        retriever: Retriever,
        k: int = 3000,
        date_limits: bool | None = None,
        metrics: Sequence[str] | None = None,
    ):
        chosen = tuple(metrics or (f"recall@{k}", *SET_KEYS))
        ranked = [m for m in chosen if m not in SET_KEYS] or [f"recall@{k}"]
        super().__init__(name, splits, retriever, ranked, "literature", ignore_identical_ids=False)
        self.k = self.depth
        self.metrics = chosen
        self.outcome_keys = frozenset({*chosen, *SET_KEYS})
        self.primary_metric = chosen[0]
        self.date_limits = retriever.kind in DATE_ENGINES if date_limits is None else date_limits

    @property
    def default_reward(self) -> dict[str, Any]:
        recall = next((m for m in self.metrics if m.startswith("recall@")), f"recall@{self.k}")
        return {"kind": "recall_tiers", "metric": recall}

    def prompt_fields(self, example: Example) -> dict[str, str]:
        engine = ENGINE_NAMES.get(self.retriever.kind, "PubMed")  # the local engine speaks PubMed syntax
        return {**example.fields, "engine": engine}

    def judge(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Judgment]:
        dates = [_review_dates(example) for example in examples] if self.date_limits else None
        rankings = self.retriever.search(list(answers), self.k, dates=dates)
        judgments = self.score(rankings, examples)
        for judgment, example in zip(judgments, examples):
            if judgment.ranking is None or isinstance(judgment.outcome, Failure):
                continue
            ranking, outcome = judgment.ranking, judgment.outcome
            relevant = sum(1 for doc in ranking.doc_ids if example.truth.get(doc, 0) > 0)
            outcome["precision"] = relevant / len(ranking) if len(ranking) else 0.0
            outcome["retrieved"] = float(len(ranking) if ranking.total is None else ranking.total)
        return judgments


def _review_dates(example: Example) -> DateRange | None:
    date = example.meta.get("pub_date")
    return DateRange(end=date) if date else None


def _example(record: dict) -> tuple[str, Example]:
    """A review: the description goes to the prompt (title + objective when there is no PICO); the
    expert strategy and the date travel in ``meta``."""
    meta = record.get("metadata") or {}
    text = record["text"]
    description = (
        text if "\nI:" in text or not meta.get("objective") else f"{text}\nObjective: {meta['objective']}"
    )
    kept = {k: meta[k] for k in ("pub_date", "boolean_query", "ovid_query", "query_syntax") if meta.get(k)}
    example = Example(
        id=str(record["_id"]), fields={"query": description}, truth={}, original=text, meta=kept
    )
    return example.id, example


def load_splits(data: Path) -> dict[str, list[Example]]:
    """Every ``qrels/<split>.tsv`` of a literature folder as examples (truth = the split's judgments)."""
    queries_path, qrels_dir = data / "queries.jsonl", data / "qrels"
    if not queries_path.is_file() or not qrels_dir.is_dir():
        raise DataError(f"{data} is not a literature folder: needs queries.jsonl and qrels/<split>.tsv")
    reviews = dict(read_jsonl(queries_path, _example, '{"_id", "text", "metadata": {...}}'))
    splits = {}
    for split, path in qrels_files(qrels_dir).items():
        judged = read_qrels(path)
        missing = [qid for qid in judged if qid not in reviews]
        if missing:
            raise DataError(f"{path}: {len(missing)} query ids not in queries.jsonl, e.g. {missing[:3]}")
        splits[split] = [
            Example(r.id, r.fields, judged[r.id], r.original, r.meta)
            for r in reviews.values()
            if r.id in judged
        ]
    return splits


def corpus_path(data: Path | None, options: LiteratureOptions) -> Path | None:
    """The folder's documents for the local engine; None for a folder searched on a live engine."""
    corpus = Path(data) / "corpus.jsonl"
    return corpus if corpus.is_file() else None


def build(data: Path | None, options: LiteratureOptions, retriever: Retriever) -> LiteratureTask:
    data = Path(data)
    return LiteratureTask(
        options.name or data.name,
        load_splits(data),
        retriever,
        options.k,
        options.date_limits,
        options.metrics,
    )


FAMILY = TaskFamily(
    template="literature", options=LiteratureOptions, build=build, corpus=corpus_path, retriever="boolean"
)
