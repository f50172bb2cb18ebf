"""Evidence seeking (open-domain QA retrieval): a passage is relevant when it contains an answer string.

Data: SQuAD v1.1 JSON (its paragraphs become the passage collection), or question/answer JSONL
(NQ-open style ``{"question", "answer": [...]}``; ``answers`` is accepted too) or a TSV/CSV table of
questions and answers (DPR's ``nq-test.qa.csv``; see :mod:`.question_files`), together with a passage
collection given as ``corpus`` (e.g. DPR's Wikipedia passages converted to JSONL). Answer matching follows
DPR's ``has_answer``: Unicode-normalised, lower-cased token sequences, so "Paris" matches "... in Paris."
but not "Parisian".

The reward follows the seed's ``nq_serini.py`` / ``triviaqa.py``: the top 3,000 BM25 hits are scanned for
the first answer-bearing passage and its rank is rewarded in tiers (``RankTiers``); a miss costs -3.5
(-2.5 on SQuAD, as in the seed's SQuAD recipe). The scan stops at the first answer-bearing passage and
reads passages in growing batches (16, 32, ... 256) from the index's document store, so a query answered
at rank 1 costs one small read, not 3,000 texts; normalised passages are kept in an LRU.

Besides ``hits@k``, every outcome says whether the query itself contains an answer (``answer_in_query``,
1.0 when a normalised answer occurs in the normalised query): the seed's "knowledge injection" study, the
share of generated queries that smuggle the answer in. It is judged on the query sent to the retriever,
so in ``expand`` mode (the original question followed by the policy's words) a question that already
contains its answer counts too.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from cachetools import LRUCache
from pydantic import Field, field_validator

from deepretrieval.files import atomic_write
from deepretrieval.paths import cache_dir
from deepretrieval.retrievers.base import Retriever
from deepretrieval.tasks import TaskFamily
from deepretrieval.tasks.base import Example, Judgment, Outcome, TaskOptions
from deepretrieval.tasks.beir import DataError, read_jsonl
from deepretrieval.tasks.question_files import is_question_file, read_qa_table
from deepretrieval.tasks.retrieval import RetrievalTask, search_failure

DEFAULT_DEPTH = 3000
SQUAD_MISS = -2.5
ANSWER_IN_QUERY = "answer_in_query"
SCAN_FIRST, SCAN_MAX = 16, 256  # passages read in the first batch of a scan; batches double up to the max

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def normalize(text: str) -> str:
    """Space-delimited lower-cased tokens with a space on both ends, for token-boundary substring tests."""
    tokens = _TOKEN.findall(unicodedata.normalize("NFD", text).lower())
    return f" {' '.join(tokens)} "


def answer_patterns(answers: Sequence[str]) -> list[str]:
    """The normalised answers that can match (an answer of no tokens matches nothing)."""
    return [norm for norm in map(normalize, answers) if len(norm) > 2]


class EvidenceTask(RetrievalTask):
    """Questions with answer strings as truth; the outcome of a query is the rank of the first passage
    containing an answer (``rank``, 0 when none in the top ``depth``), ``hits@k`` derived from it, and
    ``answer_in_query`` (reported with the metrics; see the module notes)."""

    def __init__(
        self,
        name: str,
        splits: dict[str, list[Example]],
        retriever: Retriever,
        metrics: Sequence[str] = ("hits@1", "hits@5", "hits@20"),
        depth: int = DEFAULT_DEPTH,
        miss_reward: float | None = None,
    ):
        super().__init__(name, splits, retriever, metrics, template="evidence", ignore_identical_ids=False)
        if any(not m.startswith("hits@") for m in self.metrics):
            raise ValueError(f"evidence seeking reports hits@k only, got {', '.join(self.metrics)}")
        self._hits = [(m, int(m.split("@")[1])) for m in self.metrics]
        self.primary_metric = self.metrics[-1]
        self.metrics = (*self.metrics, ANSWER_IN_QUERY)
        self.outcome_keys = frozenset({*self.metrics, "rank"})
        self.depth = max(depth, self.depth)
        self.miss_reward = miss_reward
        # normalised passage text, read on demand and kept for the passages that keep coming back
        self._passages: LRUCache = LRUCache(maxsize=100_000)

    @property
    def default_reward(self) -> dict[str, object]:
        """Rank tiers of the seed (see ``deepretrieval.rewards.RankTiers``), SQuAD's smaller miss penalty."""
        return {"kind": "rank_tiers"} | ({} if self.miss_reward is None else {"miss": self.miss_reward})

    def first_answer_rank(self, doc_ids: Sequence[str], answers: Sequence[str]) -> int:
        """Rank (from 1) of the first passage of ``doc_ids`` that contains an answer, 0 when none does.
        Passages missing from the LRU are read a batch at a time (16, then twice as many each time, up to
        256), and only as far as the first match; each is normalised only when the scan reaches it."""
        patterns = answer_patterns(answers)
        if not patterns:
            return 0
        size, texts = SCAN_FIRST, {}
        for rank, doc_id in enumerate(doc_ids, start=1):
            passage = self._passages.get(doc_id)
            if passage is None:
                if doc_id not in texts:
                    ahead = [d for d in doc_ids[rank - 1 : rank - 1 + size] if d not in self._passages]
                    texts = dict(zip(ahead, self.retriever.texts(ahead)))
                    size = min(size * 2, SCAN_MAX)
                passage = self._passages[doc_id] = normalize(texts.pop(doc_id))
            if any(pattern in passage for pattern in patterns):
                return rank
        return 0

    def judge(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Judgment]:
        judgments = []
        for answer, ranking, example in zip(
            answers, self.retriever.search(list(answers), self.depth), examples
        ):
            if ranking.failed:
                judgments.append(Judgment(search_failure(ranking)))
                continue
            rank = self.first_answer_rank(ranking.doc_ids, example.truth)
            outcome: Outcome = {name: float(1 <= rank <= k) for name, k in self._hits}
            outcome["rank"] = float(rank)
            query = normalize(answer)
            outcome[ANSWER_IN_QUERY] = float(any(p in query for p in answer_patterns(example.truth)))
            judgments.append(Judgment(outcome, ranking))
        return judgments


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
        question = record["question"]
        answers = record["answer"] if "answer" in record else record["answers"]
        if isinstance(answers, str) or not all(isinstance(a, str) for a in answers):
            raise ValueError(f"answers must be a list of strings, got {answers!r:.80}")
        qid = str(record.get("id", question))
        return Example(id=qid, fields={"query": question}, truth=list(answers), original=question)

    return {path.stem: read_jsonl(path, example, '{"question", "answer" (or "answers"): [...]}')}


class EvidenceOptions(TaskOptions):
    """``task.options`` of evidence seeking."""

    corpus: str | None = Field(None, description="passage collection (JSONL) for question/answer JSONL data")
    metrics: tuple[str, ...] = ("hits@1", "hits@5", "hits@20")
    depth: int = Field(DEFAULT_DEPTH, gt=0, description="hits scanned for an answer-bearing passage")
    name: str | None = None

    @field_validator("metrics")
    @classmethod
    def _hits_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not m.strip().lower().startswith("hits@") for m in value):
            raise ValueError(f"evidence seeking reports hits@k only, got {value}")
        return value


def _qa_table(path: Path) -> dict[str, list[Example]]:
    rows = read_qa_table(path)
    return {path.stem: [Example(id=i, fields={"query": q}, truth=a, original=q) for i, q, a in rows]}


def _data_file(data: Path) -> Path:
    path = data / "dev-v1.1.json" if data.is_dir() else data
    if not path.is_file():
        raise DataError(
            f"no evidence-seeking data at {path}: give a SQuAD JSON file, a question/answer JSONL, or a "
            "TSV/CSV of questions and answers"
        )
    return path


def corpus_path(data: Path | None, options: EvidenceOptions) -> Path:
    """The passage collection: ``options.corpus``, or the paragraphs of a SQuAD file (written once into
    the cache, atomically)."""
    path = _data_file(Path(data))
    if is_question_file(path):
        read_qa_table(path)  # a bad table is reported before the corpus is indexed
    if options.corpus is not None:
        return Path(options.corpus)
    if path.suffix != ".json":
        raise DataError(f"{path} has questions only: pass a passage collection with task.options.corpus=PATH")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    corpus = cache_dir() / "corpora" / f"squad-{digest}.jsonl"
    if not corpus.is_file():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(corpus) as out:
            for passage in _squad(path)[0]:
                out.write((json.dumps(passage, ensure_ascii=False) + "\n").encode())
    return corpus


def build(data: Path | None, options: EvidenceOptions, retriever: Retriever) -> EvidenceTask:
    """SQuAD JSON (file or folder with ``dev-v1.1.json``) or QA JSONL, judged by answer matching."""
    path = _data_file(Path(data))
    squad = path.suffix == ".json"
    splits = _squad(path)[1] if squad else _qa_table(path) if is_question_file(path) else _qa_jsonl(path)
    return EvidenceTask(
        options.name or path.stem,
        splits,
        retriever,
        options.metrics,
        options.depth,
        miss_reward=SQUAD_MISS if squad else None,
    )


FAMILY = TaskFamily(template="evidence", options=EvidenceOptions, build=build, corpus=corpus_path)
