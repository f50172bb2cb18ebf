"""Our metrics equal ir_measures (trec_eval) to 1e-6 on a real BM25 run over SciFact."""

from __future__ import annotations

import ir_measures
import pytest
from ir_measures import MRR, P, R, Success, nDCG

from deepretrieval.metrics import Metric, evaluate_run, ndcg


def test_metric_names_parse_and_print_lower_case() -> None:
    assert str(Metric.parse("NDCG@10")) == "ndcg@10"
    assert str(Metric.parse("R@3000")) == "recall@3000"
    assert str(Metric.parse("success@5")) == "hits@5"
    with pytest.raises(ValueError, match="unknown metric"):
        Metric.parse("map@10")
    with pytest.raises(ValueError, match="NAME@K"):
        Metric.parse("ndcg")


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
