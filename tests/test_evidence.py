"""Evidence seeking on SQuAD v1.1 dev: answer matching, rank outcomes, rank-tier rewards."""

from __future__ import annotations

import json

import pytest

from _index_helpers import task_index
from deepretrieval.config import PromptingConfig, RetrieverConfig
from deepretrieval.evaluation import evaluate
from deepretrieval.prompting import Prompting
from deepretrieval.retrievers import Retriever
from deepretrieval.rewards import BatchReward, RankTiers, task_scheme
from deepretrieval.tasks import load_task
from deepretrieval.tasks.evidence import EvidenceTask, normalize


def test_answer_matching_respects_token_boundaries() -> None:
    passage = normalize("The Eiffel Tower is in Paris. It opened in 1889!")
    assert normalize("paris") in passage and normalize("1889") in passage
    assert normalize("Pari") not in passage and normalize("Tower is") in passage
    assert normalize("Café") == normalize("CAFÉ")


@pytest.fixture(scope="module")
def squad(squad_file, tmp_path_factory):
    index = RetrieverConfig(
        index=task_index("evidence", squad_file, tmp_path_factory.mktemp("squad") / "bm25")
    )
    return load_task("evidence", squad_file, retriever=index)


def test_splits_hold_whole_articles(squad) -> None:
    train, test, dev = (squad.examples(s) for s in ("train", "test", "dev"))
    assert len(dev) == 10570 and len(train) + len(test) == len(dev)
    assert not {ex.id for ex in train} & {ex.id for ex in test}


def test_rank_is_first_passage_containing_an_answer(squad) -> None:
    examples = squad.examples("test")[:200]
    outcomes = squad.measure([ex.original for ex in examples], examples)
    rankings = squad.retriever.search([ex.original for ex in examples], squad.depth)
    for ex, outcome, ranking in zip(examples, outcomes, rankings):
        texts = [normalize(squad.retriever.text(hit.doc_id)) for hit in ranking]
        expected = next((i for i, t in enumerate(texts, 1) if any(normalize(a) in t for a in ex.truth)), 0)
        assert outcome["rank"] == expected
        assert outcome["hits@5"] == float(1 <= expected <= 5)
    # the original SQuAD questions are lexically close to their paragraphs: most find an answer early
    assert sum(o["hits@20"] for o in outcomes) / len(outcomes) > 0.8


def test_squad_scans_the_seed_depth_with_its_own_miss_penalty(squad) -> None:
    ex = squad.examples("test")[0]
    assert squad.depth == 3000
    scheme = task_scheme(squad)
    assert isinstance(scheme, RankTiers) and scheme.miss == -2.5
    reward = BatchReward(squad, scheme, prompting=Prompting("evidence", reasoning=True))
    good, miss = reward.score(
        [f"<think>t</think><answer>{ex.original}</answer>", "<think>t</think><answer>zzzz qqqq</answer>"],
        [ex, ex],
    ).rewards
    assert miss == pytest.approx(1.0 - 2.5)
    rank = squad.measure([ex.original], [ex])[0]["rank"]
    assert good == pytest.approx(1.0 + RankTiers().answer_reward({"rank": rank}))


def test_qa_jsonl_accepts_answer_or_answers(tmp_path) -> None:
    passages = [
        {"_id": "p1", "title": "Paris", "text": "Paris is the capital of France."},
        {"_id": "p2", "title": "Rome", "text": "Rome is the capital of Italy."},
    ]
    corpus = tmp_path / "passages.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in passages))
    questions = tmp_path / "qa.jsonl"
    questions.write_text(
        json.dumps({"question": "capital of france", "answer": ["Paris"]})
        + "\n"
        + json.dumps({"question": "capital of italy", "answers": ["Rome"]})
        + "\n"
    )
    task = load_task(
        "evidence",
        questions,
        retriever=RetrieverConfig(
            index=task_index(
                "evidence", questions, tmp_path / "idx", task_options={"corpus": str(corpus)}, k1=1.2
            ),
            options={"k1": 1.2},
        ),
        corpus=str(corpus),
    )
    examples = task.examples("qa")
    assert [ex.truth for ex in examples] == [["Paris"], ["Rome"]]
    outcomes = task.measure([ex.original for ex in examples], examples)
    assert [o["rank"] for o in outcomes] == [1.0, 1.0]
    assert task_scheme(task).miss == -3.5  # not SQuAD: the NQ / TriviaQA miss penalty


class CountingReads(Retriever):
    """A real BM25 index that counts the passages read through it (to prove the scan stops early)."""

    def __init__(self, inner):
        self.inner, self.fingerprint, self.read = inner, inner.fingerprint, 0

    def search(self, queries, k, *, dates=None):
        return self.inner.search(queries, k, dates=dates)

    def text(self, doc_id):
        self.read += 1
        return self.inner.text(doc_id)

    def texts(self, doc_ids):
        self.read += len(doc_ids)
        return self.inner.texts(doc_ids)

    def analyze(self, text):
        return self.inner.analyze(text)

    def close(self):
        self.inner.close()


def test_scan_reads_passages_only_up_to_the_first_answer(squad) -> None:
    counting = CountingReads(squad.retriever.inner)
    task = EvidenceTask("squad", {"test": squad.examples("test")}, counting, depth=3000)
    examples = squad.examples("test")[:100]
    rankings = counting.search([ex.original for ex in examples], 3000)
    for ex, ranking in zip(examples, rankings):
        before = counting.read
        rank = task.first_answer_rank(ranking.doc_ids, ex.truth)
        naive = next(
            (
                i
                for i, d in enumerate(ranking.doc_ids, 1)
                if any(normalize(a) in normalize(squad.retriever.text(d)) for a in ex.truth)
            ),
            0,
        )
        assert rank == naive
        read = counting.read - before
        # batches of 16, 32, 64, ...: reading stops within the batch holding the first answer
        assert read <= (len(ranking) if rank == 0 else max(16, 2 * rank + 16))
    repeat = counting.read
    task.first_answer_rank(rankings[0].doc_ids, examples[0].truth)
    assert counting.read == repeat  # normalised passages come from the LRU the second time


def test_answer_in_query_is_reported_by_eval(squad) -> None:
    ex = next(e for e in squad.examples("test") if normalize(e.truth[0]).count(" ") == 2)  # one-word answer
    word = ex.truth[0]
    outcomes = squad.measure([f"{ex.original} {word}", ex.original, f"{ex.original} {word}ian", ""], [ex] * 4)
    assert [o["answer_in_query"] for o in outcomes] == [
        1.0,
        float(normalize(word) in normalize(ex.original)),
        0.0,
        0.0,
    ]
    assert squad.metrics[-1] == "answer_in_query" and squad.primary_metric == "hits@20"

    class Leaky:
        name = "leaky"
        query_mode = "rewrite"

        def answers(self, examples):
            return [e.truth[0] if i % 2 else e.original for i, e in enumerate(examples)]

    result = evaluate(squad, Leaky(), "test", limit=40, progress=False)
    expand = PromptingConfig(query_mode="expand")
    plain = evaluate(squad, Leaky(), "test", limit=40, progress=False, prompting=expand)
    examples = squad.examples("test")[:40]
    in_question = [float(any(normalize(a) in normalize(e.original) for a in e.truth)) for e in examples]
    expected = sum(1.0 if i % 2 else q for i, q in enumerate(in_question)) / 40
    assert result.metrics["answer_in_query"] == pytest.approx(expected)
    # expand: the judged query is the question followed by the answer, so the question counts too
    assert plain.metrics["answer_in_query"] == pytest.approx(
        sum(1.0 if i % 2 else q for i, q in enumerate(in_question)) / 40
    )
    assert 0.4 <= result.metrics["answer_in_query"] < 1.0
