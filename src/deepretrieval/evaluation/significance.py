"""Is a policy's difference from the baseline real? A paired randomisation test over queries.

The test is the IR standard (Smucker, Allan & Carterette, CIKM 2007): under the null hypothesis the two
systems are exchangeable on every query, so the sign of each per-query difference is flipped at random
and the observed mean difference is compared with that distribution. It runs as
``scipy.stats.permutation_test(permutation_type="samples")``, two-sided, with a fixed seed (exact when
the query count is small enough to enumerate every sign pattern).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 10_000
DEFAULT_ALPHA = 0.05
MARK = "†"
MAX_BATCH_VALUES = 4_000_000  # resamples x queries held in memory at once


@dataclass(frozen=True)
class PairedTest:
    """One policy against the baseline on one metric: ``delta`` = mean(policy) - mean(baseline) over
    the ``n`` queries both have a score for, and the two-sided p-value."""

    n: int
    delta: float
    p_value: float


def paired_test(
    scores: Mapping[str, float],
    baseline: Mapping[str, float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedTest:
    """Paired randomisation test over the queries present in both ``scores`` and ``baseline``."""
    from scipy.stats import permutation_test

    shared = [key for key in scores if key in baseline]
    if not shared:
        return PairedTest(0, float("nan"), float("nan"))
    ours = np.array([scores[key] for key in shared], dtype=np.float64)
    theirs = np.array([baseline[key] for key in shared], dtype=np.float64)
    if np.array_equal(ours, theirs):  # every sign pattern gives the same mean: no evidence of a difference
        return PairedTest(len(shared), 0.0, 1.0)
    result = permutation_test(
        (ours, theirs),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        batch=max(1, MAX_BATCH_VALUES // len(shared)),
        rng=np.random.default_rng(seed),
    )
    return PairedTest(len(shared), float(np.mean(ours - theirs)), float(result.pvalue))


@dataclass(frozen=True)
class Comparison:
    """Every policy's paired tests against ``baseline``: ``tests[policy][metric]``."""

    baseline: str
    tests: dict[str, dict[str, PairedTest]]
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    alpha: float = DEFAULT_ALPHA

    def mark(self, policy: str, metric: str) -> str:
        """``†`` when ``policy`` differs significantly from the baseline on ``metric``."""
        test = self.tests.get(policy, {}).get(metric)
        return MARK if test is not None and test.p_value < self.alpha else ""

    def significant(self) -> bool:
        """Whether any policy differs significantly from the baseline on any metric (a ``†`` is printed)."""
        return any(t.p_value < self.alpha for by_metric in self.tests.values() for t in by_metric.values())

    def footer(self) -> str:
        """The line under a table: the ``†`` footnote when a ``†`` is printed, else that no difference is
        significant; either way the test that decided it."""
        counts = sorted({t.n for by_metric in self.tests.values() for t in by_metric.values() if t.n})
        if not counts:
            return f"{MARK}: no query was judged for both {self.baseline} and another policy: nothing to test"
        queries = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}-{counts[-1]:,}"
        if all(2**n <= self.resamples for n in counts):  # scipy enumerates every sign pattern
            resolution = "exact: every sign pattern enumerated"
        else:
            resolution = f"{self.resamples:,} resamples, seed {self.seed}"
            if all(2**n > self.resamples for n in counts):
                resolution += f"; the smallest p-value they can give is {2 / (self.resamples + 1):.4f}"
        verdict = (
            f"{MARK} p < {self.alpha:g} against {self.baseline}"
            if self.significant()
            else f"no difference from {self.baseline} is significant at p < {self.alpha:g}"
        )
        return (
            f"{verdict}: two-sided paired randomisation test over "
            f"{queries} queries (scipy.stats.permutation_test, permutation_type='samples', {resolution}; "
            "Smucker et al. 2007)"
        )

    def to_json(self) -> dict:
        return {
            "baseline": self.baseline,
            "test": "two-sided paired randomisation test (scipy.stats.permutation_test, samples)",
            "resamples": self.resamples,
            "seed": self.seed,
            "alpha": self.alpha,
            "tests": {
                policy: {m: {"n": t.n, "delta": t.delta, "p_value": t.p_value} for m, t in by_metric.items()}
                for policy, by_metric in self.tests.items()
            },
        }


def compare(
    per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
    baseline: str,
    metrics: list[str],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """Test every policy of ``per_query`` (policy -> query id -> metric -> value) against ``baseline``."""
    if baseline not in per_query:
        raise ValueError(f"baseline {baseline!r} is not among the policies: {', '.join(per_query)}")
    base = per_query[baseline]
    tests = {
        policy: {
            metric: paired_test(
                {q: v[metric] for q, v in scores.items()},
                {q: v[metric] for q, v in base.items()},
                resamples=resamples,
                seed=seed,
            )
            for metric in metrics
        }
        for policy, scores in per_query.items()
        if policy != baseline
    }
    return Comparison(baseline, tests, resamples, seed, alpha)
