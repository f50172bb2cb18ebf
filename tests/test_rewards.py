"""Reward schemes (seed tables), the batch reward on a real SciFact BM25 index, caching and guards."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from deepretrieval.answers import Guards, max_term_repeats
from deepretrieval.parsing import ParsedCompletion
from deepretrieval.prompting import Prompting
from deepretrieval.retrievers import Retriever
from deepretrieval.retrievers.cache import CachedRetriever
from deepretrieval.rewards import (
    BatchReward,
    ExecutionReward,
    MetricReward,
    RankTiers,
    RecallTiers,
    make_scheme,
)
from deepretrieval.tasks.retrieval import RetrievalTask

OK = ParsedCompletion("q", "t", True, "ok")
THINKING = Prompting("classic_ir", reasoning=True)
BAD = ParsedCompletion("", "", False, "no_answer")


@pytest.mark.parametrize(
    "recall, expected",
    [(0.9, 6.0), (0.7, 6.0), (0.55, 5.0), (0.45, 4.0), (0.3, 2.0), (0.2, 1.5), (0.05, 1.1), (0.01, -2.5)],
)
def test_literature_recall_tiers_match_seed(recall: float, expected: float) -> None:
    assert RecallTiers().reward(OK, {"recall@3000": recall}) == pytest.approx(expected)
    assert RecallTiers().reward(BAD, None) == -4.0


@pytest.mark.parametrize(
    "rank, expected",
    [
        (1, 6.0),
        (5, 6.0),
        (6, 5.0),
        (20, 5.0),
        (21, 3.0),
        (50, 3.0),
        (100, 2.0),
        (101, 1.5),
        (1000, 1.5),
        (1001, 1.1),
        (3000, 1.1),
        (3001, -2.5),
        (0, -2.5),
    ],
)
def test_evidence_rank_tiers_match_seed(rank: int, expected: float) -> None:
    """nq_serini.py / triviaqa.py: <=5: 5, <=20: 4, <=50: 2, <=100: 1, <=1000: 0.5, <=3000: 0.1, else -3.5;
    format +1 summed."""
    assert RankTiers().reward(OK, {"rank": rank}) == pytest.approx(expected)
    assert RankTiers().reward(BAD, None) == -4.0


def test_classic_ir_and_sql_are_gated() -> None:
    scheme = MetricReward()
    assert scheme.reward(OK, {"ndcg@10": 0.5}) == pytest.approx(0.6)
    assert scheme.reward(OK, {"ndcg@10": 0.0}) == 0.0
    assert scheme.reward(BAD, None) == -2.0
    bird = ExecutionReward(wrong=0.3)
    assert bird.reward(OK, {"ex": 1.0, "executed": 1.0}) == pytest.approx(1.1)
    assert bird.reward(OK, {"ex": 0.0, "executed": 1.0}) == pytest.approx(0.4)
    assert bird.reward(OK, {"ex": 0.0, "executed": 0.0}) == 0.0
    assert ExecutionReward().reward(OK, {"ex": 0.0, "executed": 1.0}) == 0.0


def test_schemes_are_configurable_and_validated() -> None:
    assert make_scheme("metric", metric="ndcg@50", scale=2.0).reward(OK, {"ndcg@50": 0.5}) == pytest.approx(
        1.1
    )
    with pytest.raises(ValidationError, match="tresholds|extra"):
        make_scheme("recall_tiers", tresholds=[])
    with pytest.raises(ValidationError, match="highest threshold"):
        RecallTiers(tiers=[(0.1, 1.0), (0.5, 2.0)])
    with pytest.raises(ValueError, match="unknown reward scheme"):
        make_scheme("bleu")


def test_repetition_counts_the_terms_the_judge_scores(scifact_task) -> None:
    # BM25 analyses inflections to one stem and drops stop words (Boolean operators included): the guard
    # must count what BM25 adds up, not surface words.
    inflected = "penetrance penetration penetrating penetrate " * 8
    texts = [inflected, "the of and " * 20 + "gene", "(a OR b) OR (c OR d) AND e"]
    repeats = [max_term_repeats(terms) for terms in scifact_task.analyze_many(texts)]
    assert repeats[0] == 32 and repeats[1] == 1 and repeats[2] <= 1
    assert max_term_repeats([]) == 0


def _completion(query: str) -> str:
    return f"<think>look for the evidence</think><answer>{query}</answer>"


def test_batch_reward_on_real_index_equals_per_sample_scoring(scifact_task) -> None:
    examples = scifact_task.examples("test")[:16]
    completions = [_completion(ex.original) for ex in examples] + ["garbage", _completion("")]
    batch_examples = examples + examples[:2]
    reward = BatchReward(scifact_task, MetricReward(), prompting=THINKING)
    batch = reward.score(completions, batch_examples)
    assert len(batch.rewards) == 18
    for ex, value, outcome in zip(examples, batch.rewards, batch.outcomes):
        hits = scifact_task.retriever.inner.search([ex.original], 10)[0]
        from deepretrieval.metrics import ndcg

        expected = ndcg([h.doc_id for h in hits], ex.truth, 10)
        assert outcome["ndcg@10"] == pytest.approx(expected)
        assert value == pytest.approx(0.1 + expected if expected > 0 else 0.0)
    assert batch.rewards[16] == -2.0 and batch.parsed[16].reason == "no_answer"
    assert batch.rewards[17] == -2.0 and batch.parsed[17].reason == "empty_answer"
    summary = batch.summary()
    assert summary["format_ok"] == pytest.approx(16 / 18)
    assert 0 < summary["ndcg@10"] < 1 and summary["think_len"] > 0


class CountingRetriever(Retriever):
    """A real retriever that records how it is called (to prove batching and dedupe)."""

    def __init__(self, inner):
        self.inner, self.fingerprint, self.calls = inner, inner.fingerprint, []

    def search(self, queries, k, *, dates=None):
        self.calls.append(list(queries))
        return self.inner.search(queries, k, dates=dates)

    def text(self, doc_id):
        return self.inner.text(doc_id)

    def analyze(self, text):
        return self.inner.analyze(text)

    def close(self):
        pass  # the wrapped index is the session's shared fixture: other tests keep using it


def test_batch_reward_makes_one_deduplicated_call_then_serves_from_cache(scifact_bm25, scifact_task) -> None:
    counting = CountingRetriever(scifact_bm25)
    task = RetrievalTask(
        "scifact", {"test": scifact_task.examples("test")}, CachedRetriever(counting), ("ndcg@10",)
    )
    examples = task.examples("test")[:8]
    rng = random.Random(0)
    # GRPO shape: 8 prompts x 6 samples, many duplicate queries
    batch_examples = [ex for ex in examples for _ in range(6)]
    completions = [
        _completion(rng.choice([ex.original, ex.original + " study", "vitamin D"])) for ex in batch_examples
    ]
    reward = BatchReward(task, MetricReward(), prompting=THINKING)
    first = reward.score(completions, batch_examples)
    assert len(counting.calls) == 1
    assert len(counting.calls[0]) == len(set(counting.calls[0])) < len(completions)
    second = reward.score(completions, batch_examples)
    assert len(counting.calls) == 1  # everything from the LRU
    assert second.rewards == first.rewards
    assert task.retriever.hits >= len(set(counting.calls[0]))


def test_disk_cache_survives_a_new_process_object(scifact_bm25, tmp_path) -> None:
    counting = CountingRetriever(scifact_bm25)
    first = CachedRetriever(counting, disk_dir=tmp_path / "cache")
    hits = first.search(["vitamin d fractures"], 10)
    first.close()
    again = CachedRetriever(counting, disk_dir=tmp_path / "cache")
    assert again.search(["vitamin d fractures"], 10) == hits
    assert len(counting.calls) == 1


def test_lru_is_bounded(scifact_bm25) -> None:
    cached = CachedRetriever(scifact_bm25, max_entries=10)
    cached.search([f"protein {i}" for i in range(50)], 5)
    assert len(cached._memory) == 10


def test_guards_penalise_overlong_and_repetitive_queries(scifact_task) -> None:
    ex = scifact_task.examples("test")[0]
    guards = Guards(max_query_chars=300, max_term_repeats=5)
    reward = BatchReward(scifact_task, MetricReward(), prompting=THINKING, guards=guards)
    completions = [
        _completion("cell " * 100),
        _completion(ex.original + " cells" * 10),
        _completion(ex.original + " cell cells cell's" * 3),  # inflections: one stem x 9
        _completion(ex.original + " the of and with" * 10),  # stop words: BM25 ignores them
    ]
    batch = reward.score(completions, [ex] * 4)
    assert batch.rewards[0] == -2.0 and batch.parsed[0].reason == "query_too_long"
    for i, penalised in ((1, True), (2, True), (3, False)):
        ndcg = batch.outcomes[i]["ndcg@10"]
        expected = (0.1 + ndcg if ndcg > 0 else 0.0) - (1.0 if penalised else 0.0)
        assert batch.rewards[i] == pytest.approx(expected), completions[i]


def test_scheme_metric_must_be_measured(scifact_task) -> None:
    with pytest.raises(ValueError, match="reads 'recall@3000'"):
        BatchReward(scifact_task, RecallTiers())
