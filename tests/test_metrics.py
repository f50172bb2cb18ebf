"""Our metrics equal ir_measures (trec_eval) to 1e-6 on a real BM25 run over SciFact."""

from __future__ import annotations

import ir_measures
import pytest
from ir_measures import AP, MRR, RR, Judged, P, R, Success, nDCG

from deepretrieval.metrics import Metric, evaluate_run, ndcg, score_rankings


def test_metric_names_parse_and_print_lower_case() -> None:
    assert str(Metric.parse("NDCG@10")) == "ndcg@10"
    assert str(Metric.parse("R@3000")) == "recall@3000"
    assert str(Metric.parse("success@5")) == "hits@5"
    assert str(Metric.parse("P@5")) == "precision@5" and Metric.parse("P@5").fast
    with pytest.raises(ValueError, match="unknown metric 'nosuch@10'; known: hits@K.*ir_measures"):
        Metric.parse("nosuch@10")
    with pytest.raises(ValueError, match="k must be >= 1"):
        Metric.parse("recall@0")


@pytest.mark.parametrize(
    "text, key, measure",
    [
        ("map", "map", AP),
        ("MAP", "map", AP),
        ("AP@100", "map@100", AP @ 100),
        ("RR", "rr", RR),
        ("Judged@10", "judged@10", Judged @ 10),
        ("P(rel=2)@5", "p(rel=2)@5", P(rel=2) @ 5),
        ("ndcg", "ndcg", nDCG),
    ],
)
def test_every_ir_measures_measure_is_a_metric(text: str, key: str, measure) -> None:
    metric = Metric.parse(text)
    assert str(metric) == key and not metric.fast and metric.ir_measure() == measure
    assert Metric.parse(key) == metric  # the key reads back as the same metric
    assert metric.depth == (measure["cutoff"] if "cutoff" in measure.params else 1000)


def test_a_measure_without_its_provider_is_one_line() -> None:
    with pytest.raises(ValueError, match="cannot be computed here: .*pyndeval") as err:
        Metric.parse("ERR_IA@10")
    assert "\n" not in str(err.value)


def test_ir_measures_metrics_on_duplicated_and_empty_rankings() -> None:
    """Each ranking is its own query: the same example twice in a batch, an empty ranking, no qrels."""
    metrics = [Metric.parse(m) for m in ("map", "judged@10", "ndcg@10")]
    qrels = {"a": 1, "b": 0, "c": 2}
    values = score_rankings(metrics, [["a", "x", "c"], ["x", "a"], [], ["a"]], [qrels, qrels, qrels, {}])
    assert values[0]["map"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert values[1]["map"] == pytest.approx(0.5 / 2) and values[0]["judged@10"] == pytest.approx(2 / 3)
    assert values[2] == values[3] == {"map": 0.0, "judged@10": 0.0, "ndcg@10": 0.0}


def test_graded_ndcg_by_hand() -> None:
    # gains 2 at rank 2 and 1 at rank 3; ideal puts 2 then 1 at ranks 1, 2
    value = ndcg(["x", "a", "b"], {"a": 2, "b": 1}, 10)
    import math

    expected = (2 / math.log2(3) + 1 / math.log2(4)) / (2 / math.log2(2) + 1 / math.log2(3))
    assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("split", ["train", "test"])
def test_equal_to_ir_measures_on_real_scifact_run(scifact_task, split: str) -> None:
    examples = scifact_task.examples(split)
    rankings = scifact_task.retriever.search([ex.original for ex in examples], 100)
    run = {ex.id: [h.doc_id for h in hits] for ex, hits in zip(examples, rankings)}
    qrels = {ex.id: dict(ex.truth) for ex in examples}
    # make the judged set graded so NDCG's gain handling is exercised too
    first = examples[0]
    qrels[first.id] = {doc: 2 for doc in qrels[first.id]} | {run[first.id][0]: 1}
    ours, per_query = evaluate_run(run, qrels, ["ndcg@10", "recall@100", "precision@10", "mrr@10", "hits@20"])

    # scores strictly decreasing with our rank, so trec_eval cannot re-order ties differently
    scored = [
        ir_measures.ScoredDoc(q, d, float(-rank)) for q, docs in run.items() for rank, d in enumerate(docs)
    ]
    judged = [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()]
    measures = {
        "ndcg@10": nDCG @ 10,
        "recall@100": R @ 100,
        "precision@10": P @ 10,
        "mrr@10": MRR @ 10,
        "hits@20": Success @ 20,
    }
    reference = ir_measures.calc_aggregate(list(measures.values()), judged, scored)
    for key, measure in measures.items():
        assert ours[key] == pytest.approx(reference[measure], abs=1e-6), key
    per_ref = {
        (m.query_id, str(m.measure)): m.value for m in ir_measures.iter_calc([nDCG @ 10], judged, scored)
    }
    for qid, values in per_query.items():
        assert values["ndcg@10"] == pytest.approx(per_ref.get((qid, "nDCG@10"), 0.0), abs=1e-6)

    # the measures ir_measures computes for us equal it too (they are it, on the same order)
    ours, _ = evaluate_run(run, qrels, ["map", "RR", "Judged@10", "P(rel=2)@5"])
    others = {"map": AP, "rr": RR, "judged@10": Judged @ 10, "p(rel=2)@5": P(rel=2) @ 5}
    reference = ir_measures.calc_aggregate(list(others.values()), judged, scored)
    for key, measure in others.items():
        assert ours[key] == pytest.approx(reference[measure], abs=1e-9), key
