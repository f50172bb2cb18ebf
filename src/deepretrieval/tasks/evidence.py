"""Evidence seeking (open-domain QA retrieval): a passage is relevant when it contains an answer string.

Data: SQuAD v1.1 JSON (its paragraphs become the passage collection), or question/answer JSONL
(NQ-open style ``{"question", "answer": [...]}``) together with a passage collection given as ``corpus``
(e.g. DPR's Wikipedia passages converted to JSONL). Answer matching follows DPR's ``has_answer``:
Unicode-normalised, lower-cased token sequences, so "Paris" matches "... in Paris." but not "Parisian".
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from cachetools import LRUCache

from deepretrieval.paths import cache_dir
from deepretrieval.retrievers import open_retriever
from deepretrieval.retrievers.base import Ranking, Retriever
from deepretrieval.tasks.base import Example, Outcome
from deepretrieval.tasks.beir import DataError, read_jsonl
from deepretrieval.tasks.retrieval import RetrievalTask

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def normalize(text: str) -> str:
    """Space-delimited lower-cased tokens with a space on both ends, for token-boundary substring tests."""
    tokens = _TOKEN.findall(unicodedata.normalize("NFD", text).lower())
    return f" {' '.join(tokens)} "


class EvidenceTask(RetrievalTask):
    """Questions with answer strings as truth; the outcome of a query is the rank of the first passage
    containing an answer (``rank``, 0 when none in the top ``depth``) and ``hits@k`` derived from it."""

    extra_outcomes = ("rank",)

    def __init__(
        self,
        name: str,
        splits: dict[str, list[Example]],
        retriever: Retriever,
        metrics: Sequence[str] = ("hits@1", "hits@5", "hits@20"),
        depth: int = 100,
    ):
        super().__init__(name, splits, retriever, metrics, template="evidence")
        if any(not m.startswith("hits@") for m in self.metrics):
            raise ValueError(f"evidence seeking reports hits@k only, got {', '.join(self.metrics)}")
        self._cutoffs = [int(m.split("@")[1]) for m in self.metrics]
        self.primary_metric = self.metrics[-1]
        self.depth = max(depth, self.depth)
        # normalised passage text, read on demand and kept for the passages that keep coming back
        self._passages: LRUCache = LRUCache(maxsize=100_000)

    def default_scheme(self):
        from deepretrieval.rewards import RankTiers

        return RankTiers()

    def _passage(self, doc_id: str) -> str:
        text = self._passages.get(doc_id)
        if text is None:
            text = self._passages[doc_id] = normalize(self.retriever.text(doc_id))
        return text

    def first_answer_rank(self, ranking: Sequence, answers: Sequence[str]) -> int:
        doc_ids = ranking.doc_ids if isinstance(ranking, Ranking) else [hit.doc_id for hit in ranking]
        norms = [n for n in map(normalize, answers) if len(n) > 2]
        for rank, doc_id in enumerate(doc_ids, start=1):
            passage = self._passage(doc_id)
            if any(norm in passage for norm in norms):
                return rank
        return 0

    def measure(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Outcome]:
        outcomes = []
        for ranking, example in zip(self.retriever.search(list(answers), self.depth), examples):
            rank = self.first_answer_rank(ranking, example.truth)
            outcome: Outcome = {name: float(1 <= rank <= k) for name, k in zip(self.metrics, self._cutoffs)}
            outcome["rank"] = float(rank)
            outcomes.append(outcome)
        return outcomes


def _squad(path: Path) -> tuple[list[dict], dict[str, list[Example]]]:
    """Passages and questions of a SQuAD v1.1 file. Splits: ``dev`` (all), and ``train``/``test`` holding
    whole articles (first 80% / last 20% in file order) so that no passage is shared between them."""
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (ValueError, KeyError) as err:
        raise DataError(f"{path}: not a SQuAD JSON file ({err})") from None
    passages, by_article = [], []
    for a, article in enumerate(articles):
        examples = []
        for p, paragraph in enumerate(article["paragraphs"]):
            passages.append(
                {"_id": f"{a}-{p}", "title": article["title"].replace("_", " "), "text": paragraph["context"]}
            )
            for qa in paragraph["qas"]:
                answers = list(dict.fromkeys(ans["text"] for ans in qa["answers"]))
                examples.append(
                    Example(
                        id=qa["id"], fields={"query": qa["question"]}, truth=answers, original=qa["question"]
                    )
                )
        by_article.append(examples)
    cut = int(len(by_article) * 0.8)
    flat = lambda groups: [ex for group in groups for ex in group]
    return passages, {
        "dev": flat(by_article),
        "train": flat(by_article[:cut]),
        "test": flat(by_article[cut:]),
    }


def _qa_jsonl(path: Path) -> dict[str, list[Example]]:
    def example(record: dict) -> Example:
        question, answers = record["question"], list(record["answer"])
        qid = str(record.get("id", question))
        return Example(id=qid, fields={"query": question}, truth=answers, original=question)

    return {path.stem: read_jsonl(path, example, '{"question", "answer": [...]}')}


def load(
    data: str | Path,
    *,
    corpus: str | Path | None = None,
    retriever: str | Retriever = "bm25",
    index_dir: str | Path | None = None,
    metrics: Sequence[str] = ("hits@1", "hits@5", "hits@20"),
    depth: int = 100,
    name: str | None = None,
) -> EvidenceTask:
    """SQuAD JSON (file or folder with ``dev-v1.1.json``) or QA JSONL + ``corpus``, judged by answer matching."""
    data = Path(data)
    if data.is_dir():
        data = data / "dev-v1.1.json"
    if not data.is_file():
        raise DataError(
            f"no evidence-seeking data at {data}: give a SQuAD JSON file or a question/answer JSONL"
        )
    if data.suffix == ".json":
        passages, splits = _squad(data)
        if corpus is None:
            digest = hashlib.sha256(data.read_bytes()).hexdigest()[:12]
            corpus = cache_dir() / "corpora" / f"squad-{digest}.jsonl"
            if not corpus.is_file():
                corpus.parent.mkdir(parents=True, exist_ok=True)
                corpus.write_text(
                    "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in passages), encoding="utf-8"
                )
    else:
        splits = _qa_jsonl(data)
        if corpus is None and isinstance(retriever, str) and index_dir is None:
            raise DataError(
                f"{data} has questions only: pass a passage collection with corpus=PATH (or an index_dir)"
            )
    if isinstance(retriever, str):
        retriever = open_retriever(retriever, corpus=corpus, index_dir=index_dir)
    return EvidenceTask(name or data.stem, splits, retriever, metrics, depth)
