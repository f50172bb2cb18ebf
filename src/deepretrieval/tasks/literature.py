"""Literature search (systematic reviews): the policy writes a Boolean query for a search engine from a
review description (a PICO statement, or a review title and objective); the review's included studies
among the results are the outcome (the seed's headline task).

Data: BEIR-style folders (``queries.jsonl`` with ``metadata``, ``qrels/<split>.tsv``, ``corpus.jsonl``
when the documents are local), e.g. ``literature/pubmed-pico``, ``ctgov-pico``, ``clef-tar-2017``. The
engine is the retriever: ``pubmed`` or ``ctgov`` (live APIs, or a stand-in / mirror through
``engine_url``) or ``boolean`` (the local engine over the folder's corpus). On engines that can filter
by date, each review is searched up to its own publication date (``metadata.pub_date``), so a policy can
never find studies from the review's future.

Two ways of judging a query, by what the engine can show:

- **ranked** (PubMed, ClinicalTrials.gov: 36M records, of which a query sees the top K): ``recall@K``
  (K = 3,000 as in the seed), ``precision`` (relevant among the results returned, at most K) and
  ``retrieved`` (how many documents the query matched). Reward: the seed's recall tiers.
- **set** (an engine that lists every match, the local Boolean engine): the whole result set, as the
  Boolean-query literature and CLEF TAR judge it: ``set_recall``, ``set_precision``, ``f1``, ``f3``
  (recall-weighted) and ``retrieved`` (the screening load). On a collection of a few thousand candidates
  per review, recall@3000 rewards ORing every word of the title (it matches half the collection); the set
  measures do not. Reward: :class:`~deepretrieval.rewards.SetReward` (recall, log-scaled precision,
  penalties for no result and over-broad queries).

A query the engine cannot parse is an invalid answer (``query_errors``), never an empty result.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from deepretrieval.metrics import Metric
from deepretrieval.retrievers.base import DateRange, Ranking, Retriever
from deepretrieval.tasks import TaskFamily
from deepretrieval.tasks.base import Example, Failure, Judgment, TaskOptions
from deepretrieval.tasks.beir import DataError, qrels_files, read_jsonl, read_qrels
from deepretrieval.tasks.retrieval import RetrievalTask

DATE_ENGINES = frozenset({"pubmed", "ctgov"})
ENGINE_NAMES = {"pubmed": "PubMed", "ctgov": "ClinicalTrials.gov"}
LIST_KEYS = ("precision", "retrieved")
"""Outcomes of the returned list: relevant among the returned documents, and how many the query matched."""
SET_KEYS = ("set_recall", "set_precision", "f1", "f3")
"""Outcomes of the whole result set (engines that list every match)."""
SET_DEFAULT = ("f3", "set_recall", "set_precision", "f1", "retrieved")
PROTOCOL_FIELDS = (
    ("participants", "Participants"),
    ("index_tests", "Index tests"),
    ("target_conditions", "Target condition"),
)
"""The protocol sections a ``pico`` description shows, as a PICO statement of a diagnostic review."""
PROTOCOL_WORDS = 40
"""Words shown of each protocol section (the opening of each is the statement; the rest is detail)."""


class LiteratureOptions(TaskOptions):
    """``task.options`` of literature search."""

    k: int = Field(3000, gt=0, description="results scanned for recall@K on ranked engines (the seed: 3,000)")
    metrics: tuple[str, ...] | None = Field(
        None,
        description="ranked metrics (recall@200, ndcg@10...), 'precision', 'retrieved', and on an engine that "
        "lists every match set_recall, set_precision, f1, f3 (default: recall@K, precision, retrieved on "
        "ranked engines; f3, set_recall, set_precision, f1, retrieved on the local Boolean engine)",
    )
    date_limits: bool | None = Field(
        None, description="search each review up to its publication date (default: on engines that can)"
    )
    description: Literal["objective", "title", "pico"] = Field(
        "objective",
        description="what the prompt says of a review: title and objective (or the PICO when the topic is one), "
        "the title alone, or title plus the protocol's participants, index tests and target condition",
    )
    judgements: str | None = Field(
        None,
        description="judge every split by this qrels file of the folder instead (e.g. 'abstract': the "
        "abstract-level judgements, denser than the included studies), keeping each split's reviews",
    )
    name: str | None = None

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("name at least one metric")
        return tuple(m if m in (*LIST_KEYS, *SET_KEYS) else str(Metric.parse(m)) for m in value)


class LiteratureTask(RetrievalTask):
    """Reviews with included studies as truth; an answer is a Boolean query for the engine (see the module
    notes for the ranked and set judgements)."""

    def __init__(
        self,
        name: str,
        splits: dict[str, list[Example]],
        retriever: Retriever,
        k: int = 3000,
        date_limits: bool | None = None,
        metrics: Sequence[str] | None = None,
    ):
        self.judges_sets = retriever.lists_all_matches
        chosen = tuple(metrics or (SET_DEFAULT if self.judges_sets else (f"recall@{k}", *LIST_KEYS)))
        if not self.judges_sets and any(m in SET_KEYS for m in chosen):
            raise ValueError(
                f"{', '.join(m for m in chosen if m in SET_KEYS)} judge the whole result set: they need an engine "
                f"that lists every match (--engine local); on {retriever.kind} use recall@K"
            )
        ranked = [m for m in chosen if m not in (*LIST_KEYS, *SET_KEYS)] or [f"recall@{k}"]
        super().__init__(name, splits, retriever, ranked, "literature", ignore_identical_ids=False)
        self.k = self.depth
        self.metrics = chosen
        self.outcome_keys = frozenset({*chosen, *LIST_KEYS, *(SET_KEYS if self.judges_sets else ())})
        self.primary_metric = chosen[0]
        self.date_limits = retriever.kind in DATE_ENGINES if date_limits is None else date_limits

    @property
    def default_reward(self) -> dict[str, Any]:
        if self.judges_sets:
            return {"kind": "set"}
        recall = next((m for m in self.metrics if m.startswith("recall@")), f"recall@{self.k}")
        return {"kind": "recall_tiers", "metric": recall}

    def prompt_fields(self, example: Example) -> dict[str, str]:
        engine = ENGINE_NAMES.get(self.retriever.kind, "PubMed")  # the local engine speaks PubMed syntax
        return {**example.fields, "engine": engine}

    def judge(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Judgment]:
        dates = [_review_dates(example) for example in examples] if self.date_limits else None
        depth = sys.maxsize if self.judges_sets else self.k  # a set engine lists every match
        rankings = self.retriever.search(list(answers), depth, dates=dates)
        top = [
            r if r.failed else Ranking(r.doc_ids[: self.k], r.scores[: self.k], total=r.total)
            for r in rankings
        ]
        judgments = self.score(top, examples)  # the ranked metrics, on the top K
        for index, (judgment, ranking, example) in enumerate(zip(judgments, rankings, examples)):
            if isinstance(judgment.outcome, Failure):
                continue
            outcome, shown = judgment.outcome, top[index]
            found = sum(1 for doc in shown.doc_ids if example.truth.get(doc, 0) > 0)
            outcome["precision"] = found / len(shown) if len(shown) else 0.0
            outcome["retrieved"] = float(len(ranking) if ranking.total is None else ranking.total)
            if self.judges_sets:
                outcome |= set_measures(ranking.doc_ids, example.truth)
            judgments[index] = Judgment(outcome, ranking)  # the whole result set, for the run file
        return judgments


def set_measures(matched: Sequence[str], truth: dict[str, int]) -> dict[str, float]:
    """Set recall, set precision, F1 and F3 of a result set (F-beta: ``(1 + b^2) P R / (b^2 P + R)``)."""
    relevant = sum(1 for grade in truth.values() if grade > 0)
    found = sum(1 for doc in matched if truth.get(doc, 0) > 0)
    recall = found / relevant if relevant else 0.0
    precision = found / len(matched) if matched else 0.0

    def f(beta: float) -> float:
        weighted = beta * beta * precision + recall
        return (1 + beta * beta) * precision * recall / weighted if weighted else 0.0

    return {"set_recall": recall, "set_precision": precision, "f1": f(1.0), "f3": f(3.0)}


def _review_dates(example: Example) -> DateRange | None:
    date = example.meta.get("pub_date")
    return DateRange(end=date) if date else None


def describe(text: str, meta: dict[str, Any], description: str) -> str:
    """What the prompt says of a review: its title and objective (the text alone when it is already a
    PICO statement), the title alone, or the title with the openings of the protocol's PICO sections."""
    if description == "title" or "\nI:" in text:
        return text
    if description == "pico":
        protocol = meta.get("protocol") or {}
        lines = [f"Title: {text}"] + [
            f"{label}: {' '.join(str(protocol[key]).split()[:PROTOCOL_WORDS])}"
            for key, label in PROTOCOL_FIELDS
            if protocol.get(key)
        ]
        return "\n".join(lines)
    return f"{text}\nObjective: {meta['objective']}" if meta.get("objective") else text


def load_splits(
    data: Path, description: str = "objective", judgements: str | None = None
) -> dict[str, list[Example]]:
    """Every ``qrels/<split>.tsv`` of a literature folder as examples (truth = the split's judgements, or
    the ``judgements`` file's for the split's reviews). The description goes to the prompt; the expert
    strategy and the date travel in ``meta``."""
    queries_path, qrels_dir = data / "queries.jsonl", data / "qrels"
    if not queries_path.is_file() or not qrels_dir.is_dir():
        raise DataError(f"{data} is not a literature folder: needs queries.jsonl and qrels/<split>.tsv")

    def review(record: dict) -> tuple[str, Example]:
        meta = record.get("metadata") or {}
        kept = {
            k: meta[k] for k in ("pub_date", "boolean_query", "ovid_query", "query_syntax") if meta.get(k)
        }
        text = record["text"]
        fields = {"query": describe(text, meta, description)}
        return str(record["_id"]), Example(str(record["_id"]), fields, {}, text, kept)

    reviews = dict(read_jsonl(queries_path, review, '{"_id", "text", "metadata": {...}}'))
    override = None
    files = qrels_files(qrels_dir)
    if judgements is not None:
        if judgements not in files:
            raise DataError(
                f"task.options.judgements: no qrels/{judgements} file; the folder has {', '.join(files)}"
            )
        override = read_qrels(files[judgements])
    splits = {}
    for split, path in files.items():
        judged = read_qrels(path)
        missing = [qid for qid in judged if qid not in reviews]
        if missing:
            raise DataError(f"{path}: {len(missing)} query ids not in queries.jsonl, e.g. {missing[:3]}")
        truth = judged if override is None else {qid: override.get(qid, {}) for qid in judged}
        splits[split] = [
            Example(r.id, r.fields, truth[r.id], r.original, r.meta)
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
        load_splits(data, options.description, options.judgements),
        retriever,
        options.k,
        options.date_limits,
        options.metrics,
    )


FAMILY = TaskFamily(
    template="literature", options=LiteratureOptions, build=build, corpus=corpus_path, retriever="boolean"
)
