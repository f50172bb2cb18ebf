"""The seed's format check, answer extraction, rewards and pairwise NDCG, as its reward files compute them
(pat-jj/DeepRetrieval @001a563, ``code/verl/utils/reward_score/{pubmed,nq_serini,squad,scifact}.py``,
``code/src/Lucene/utils.py``, ``code/src/eval/BM25/scifact.py``), on real tasks."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from deepretrieval.answers import AnswerParser
from deepretrieval.config import PromptingConfig
from deepretrieval.metrics import Metric
from deepretrieval.parsing import parse_seed_completion
from deepretrieval.prompting import Prompting, preset, resolve
from deepretrieval.rewards import BatchReward, MetricReward, RankTiers, RecallTiers, task_scheme
from deepretrieval.tasks.base import Example

PREFILL = " Let me solve this step by step. \n<think>\n"


@pytest.mark.parametrize(
    ("completion", "reason", "answer"),
    [
        (PREFILL + 'x</think>\n<answer>{"query": "a AND b"}</answer>', "ok", "a AND b"),
        (
            PREFILL + 'x</think><answer>\n{\n "query": " spaced "\n}\n</answer>',
            "ok",
            " spaced ",
        ),  # kept as is
        (PREFILL + "x</think><answer></answer>", "empty_answer", ""),
        (PREFILL + "x</think><answer>a AND b</answer>", "invalid_json", ""),  # no regex fallback
        (PREFILL + 'x</think><answer>{"sql": "x"}</answer>', "json_missing_key", ""),
        (PREFILL + 'x</think><answer>["query"]</answer>', "json_missing_key", ""),
        (PREFILL + 'x</think><answer>{"query": 3}</answer>', "json_not_text", ""),
        # the tags: exactly one of each, in order; the prefill's <think> counts
        (PREFILL + '<think>x</think><answer>{"query": "q"}</answer>', "repeated_tags", "q"),
        ('x</think><answer>{"query": "q"}</answer>', "missing_tags", "q"),
        (PREFILL + '<answer>{"query": "q"}</answer></think>', "misordered_tags", "q"),
        (PREFILL + "x</think> no answer", "missing_tags", ""),
    ],
)
def test_the_seeds_format_check(completion: str, reason: str, answer: str) -> None:
    parsed = parse_seed_completion(completion)
    assert (parsed.reason, parsed.answer, parsed.format_ok) == (reason, answer, reason == "ok")


def test_the_last_answer_is_read_and_a_broken_one_keeps_it_for_evaluation() -> None:
    text = PREFILL + 'a</think><answer>{"query": "one"}</answer><answer>{"query": "two"}</answer>'
    parsed = parse_seed_completion(text)
    assert parsed.answer == "two" and not parsed.format_ok and parsed.reason == "repeated_tags"
    # the guard still caps what evaluation would search
    parser = AnswerParser(Prompting(**preset("seed:pubmed")), answer_key="query")
    long = PREFILL + 'a</think><answer>{"query": "' + "x" * 3000 + '"}</answer>'
    assert parser(long).reason == "query_too_long" and parser(long).answer == ""


def seed_literature_score(completion: str, recall: float | None) -> float:
    """pubmed.py compute_score with the search replaced by its recall (None: the search is not reached)."""
    parsed = parse_seed_completion(completion)
    structure = parsed.reason not in ("missing_tags", "repeated_tags", "misordered_tags")
    format_score = 1 if structure else -4
    if not structure or parsed.reason == "empty_answer":
        return format_score
    if parsed.reason != "ok":
        return format_score - 4
    tiers = [(0.7, 5), (0.5, 4), (0.4, 3), (0.3, 1), (0.1, 0.5), (0.05, 0.1)]
    return format_score + next((r for t, r in tiers if recall >= t), -3.5)


class FakeLiterature:
    """A literature-like task whose judge returns a fixed recall per answer (the tiers are what is tested)."""

    name = "pubmed-pico"
    answer_key = "query"
    default_template = "literature"
    supports_feedback = False
    primary_metric = "recall@3000"
    metrics = ("recall@3000",)
    outcome_keys = frozenset(metrics)
    default_reward: ClassVar[dict[str, str]] = {"kind": "recall_tiers"}

    def __init__(self, recalls: dict[str, float]):
        self.recalls = recalls

    def measure(self, answers, examples):
        return [{"recall@3000": self.recalls[a]} for a in answers]

    def analyze_many(self, answers):
        return [a.split() for a in answers]

    def query_errors(self, queries):
        return [None] * len(queries)


def test_literature_rewards_equal_the_seeds_compute_score() -> None:
    recalls = {"a": 0.8, "b": 0.45, "c": 0.06, "d": 0.0, " spaced ": 0.3}
    task = FakeLiterature(recalls)
    prompting = resolve(PromptingConfig(preset="seed:pubmed"), None, task)
    scheme = task_scheme(task, "seed", prompting=prompting)
    assert isinstance(scheme, RecallTiers)
    completions = [PREFILL + f'r</think><answer>{{"query": "{q}"}}</answer>' for q in recalls] + [
        PREFILL + "r</think><answer></answer>",
        PREFILL + "r</think><answer>not json</answer>",
        PREFILL + 'r</think><answer>{"q": 1}</answer>',
        PREFILL + "<think>twice</think><answer>{}</answer>",
    ]
    batch = BatchReward(task, scheme, prompting=prompting).score(completions, [Example("e", {}, {})] * 9)
    expected = [seed_literature_score(c, recalls.get(parse_seed_completion(c).answer)) for c in completions]
    assert batch.rewards == expected == [6, 4, 1.1, -2.5, 2, 1, -3, -3, -4]


def test_seed_schemes_per_dataset() -> None:
    class Named:
        default_reward: ClassVar[dict[str, str]] = {"kind": "metric", "metric": "ndcg@10"}

    def scheme(dataset: str):
        return task_scheme(Named(), "seed", prompting=Prompting(**preset(f"seed:{dataset}")))

    squad = scheme("squad")
    assert isinstance(squad, RankTiers) and squad.miss == -2.5 and squad.answer_errors["invalid_json"] == -3
    assert scheme("nq").miss == -3.5 and scheme("nq").answer_errors["invalid_json"] == -4
    scifact = scheme("scifact")
    assert isinstance(scifact, MetricReward) and scifact.metric == "seed_pair_ndcg@50"
    assert (scifact.format_bonus, scifact.format_penalty, scifact.combine) == (0.1, -2.0, "gated")
    assert scheme("hotpotqa").metric == "ndcg@3000" and scheme("fever").metric == "ndcg@1000"
    assert scheme("bird").wrong == 0.3 and scheme("spider").wrong == 0.0
    with pytest.raises(ValueError, match="seed prompting"):
        task_scheme(Named(), "seed", prompting=Prompting("classic_ir"))


def test_pairwise_ndcg_is_the_seeds_per_pair_value_averaged() -> None:
    """ndcg_at_k(retrieved, target, k) of src/Lucene/utils.py for a single target is 1/log2(rank+1)."""
    ranked = ["d9", "d1", "d8", "d2"]
    qrels = {"d1": 1, "d2": 2, "d3": 1}  # grades ignored; d3 not retrieved
    pairs = [1 / math.log2(2 + 1), 1 / math.log2(4 + 1), 0.0]
    assert Metric.parse("seed_pair_ndcg@10")(ranked, qrels) == pytest.approx(sum(pairs) / 3)
    assert Metric.parse("seed_pair_ndcg@3")(ranked, qrels) == pytest.approx(pairs[0] / 3)
    assert Metric.parse("ndcg@10")(ranked, qrels) != Metric.parse("seed_pair_ndcg@10")(ranked, qrels)


def test_scifact_seed_reward_on_the_real_task(scifact_dir, scifact_bm25) -> None:
    """SciFact's seed scheme: 0.1 + the claim's pairwise NDCG@50 when above 0 (gated), -2 for broken JSON."""
    from deepretrieval.tasks import load_task

    task = load_task("beir", scifact_dir, retriever=scifact_bm25, metrics=["ndcg@10", "seed_pair_ndcg@50"])
    prompting = resolve(PromptingConfig(preset="seed:scifact"), None, task)
    reward = BatchReward(task, task_scheme(task, "seed", prompting=prompting), prompting=prompting)
    examples = task.examples("test")[:20]
    prefill = prompting.prefill
    completions = [prefill + f'c</think><answer>{{"query": "{e.original}"}}</answer>' for e in examples]
    batch = reward.score(
        [*completions, prefill + "c</think><answer>{'query': 'x'}</answer>"], [*examples, examples[0]]
    )
    rankings = scifact_bm25.search([e.original for e in examples], 51)
    pair = Metric.parse("seed_pair_ndcg@50")
    values = [pair([d for d in r.doc_ids if d != e.id][:50], e.truth) for r, e in zip(rankings, examples)]
    assert batch.rewards[:-1] == pytest.approx([0.1 + v if v > 0 else 0.0 for v in values])
    assert batch.rewards[-1] == -2.0  # the seed's check_json_format fails: the format penalty


def test_the_seeds_original_query_of_a_pico_topic(shared_data) -> None:
    """eval_pubmed_base.py: f"{P} OR {I} OR {C} OR {O}", the PubMed / CT.gov "Original Query" row."""
    import json

    from deepretrieval.policies import load_policy
    from deepretrieval.tasks import load_task

    folder = shared_data / "literature" / "pubmed-pico"
    topics = [json.loads(line)["metadata"] for line in (folder / "queries.jsonl").open()][:20]
    task = load_task("literature", folder, judge=False)
    answers = load_policy("pico-or").answers(task.examples("test")[:20])
    assert answers == [f"{t['P']} OR {t['I']} OR {t['C']} OR {t['O']}" for t in topics]
    with pytest.raises(ValueError, match="needs PICO descriptions"):
        load_policy("pico-or").answers([Example("x", {}, {}, original="a review title")])
