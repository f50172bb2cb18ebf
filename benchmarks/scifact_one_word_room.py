"""How much a one-word expansion can add to SciFact's claims under BM25: the room an ``expand`` policy has.

In ``expand`` mode the judge searches the claim followed by the policy's words, and BM25 here weighs a
repeated term by its count, so one word from the claim doubles that term's weight. For the 300 test claims
this prints NDCG@10 of the claim alone, of the claim with its rarest term repeated (a no-model heuristic:
lowest document frequency in the collection), and of the best single claim word per claim chosen with the
test judgements (an oracle: the ceiling of a policy that answers one of the claim's words).

    python benchmarks/scifact_one_word_room.py [--data DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter

from _common import REPO_ROOT, shared_data_dir
from deepretrieval.config import load_config
from deepretrieval.files import write_json
from deepretrieval.train.data import build_task

METRIC = "ndcg@10"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(shared_data_dir() / "scifact"))
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()

    config = load_config(REPO_ROOT / "configs" / "scifact-bm25-cpu.yaml", [f"task.data={args.data}"])
    task = build_task(config)
    claims = task.examples("test")
    original = [outcome[METRIC] for outcome in task.measure([c.original for c in claims], claims)]

    docs = task.retriever.inner.docs  # the collection's texts, for document frequencies
    frequency = Counter(term for terms in task.analyze_many(list(docs)) for term in set(terms))
    rarest = []
    for claim, terms in zip(claims, task.analyze_many([c.original for c in claims]), strict=True):
        known = [term for term in terms if frequency[term]]
        rarest.append(
            f"{claim.original} {min(known, key=frequency.__getitem__)}" if known else claim.original
        )
    heuristic = [outcome[METRIC] for outcome in task.measure(rarest, claims)]

    oracle = []
    for claim, alone in zip(claims, original, strict=True):
        words = sorted({word for word in claim.original.split() if len(word) > 2})
        expanded = [f"{claim.original} {word}" for word in words]
        scores = [outcome[METRIC] for outcome in task.measure(expanded, [claim] * len(expanded))]
        oracle.append(max([alone, *scores]))
    task.close()

    figures = {
        "claims": len(claims),
        "original": statistics.mean(original),
        "rarest_term_repeated": statistics.mean(heuristic),
        "best_claim_word_oracle": statistics.mean(oracle),
        "claims_an_oracle_word_improves": sum(o > a for o, a in zip(oracle, original, strict=True)),
    }
    print(f"SciFact test ({len(claims)} claims), BM25 {METRIC}")
    print(f"  claim alone                              {figures['original']:.4f}")
    print(f"  claim + its rarest term (no model)       {figures['rarest_term_repeated']:.4f}")
    print(
        f"  claim + its best word (oracle, qrels)    {figures['best_claim_word_oracle']:.4f}  "
        f"({figures['claims_an_oracle_word_improves']} claims improved)"
    )
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
