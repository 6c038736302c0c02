"""Statistics over training seeds: mean ± sample standard deviation, Welch's t-test, and
the rule that says whether one row of a study beats another.

The sweep reports every row with seeds as `mean_std` of its finished seeds; the study
document (`fmcnet.study`) compares the rows its spec names with `verdict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1; None below two values) of `values`."""
    if not values:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)


def verdict(better: Mapping[str, Any], worse: Mapping[str, Any], metric: str = "R1"
            ) -> dict[str, Any]:
    """Difference of the means and whether it exceeds the seed spread.

    The rule: the difference counts when it is larger than the sum of the two sample
    standard deviations (a conservative bar: with two or three seeds a t-test has almost
    no power, and this asks the two spreads not to touch). With fewer than two seeds on
    a side there is no spread, and the verdict says so. The bar does not fall with more
    seeds, so `p` adds the two-sided p-value of Welch's t-test on the seeds' numbers
    (needs the rows' seed counts `n`; None without them): a small p with a verdict
    "within the seed spread" is a mean difference that more seeds resolved.
    """
    a, b = better.get(metric), worse.get(metric)
    if a is None or b is None:
        return {"diff": None, "spread": None, "verdict": "not run", "p": None}
    sa, sb = better.get(f"{metric}_std"), worse.get(f"{metric}_std")
    diff = float(a) - float(b)
    if sa is None or sb is None:
        return {"diff": diff, "spread": None, "verdict": "no spread (one seed)", "p": None}
    spread = float(sa) + float(sb)
    if abs(diff) <= spread:
        word = "within the seed spread"
    else:
        word = "better, beyond the seed spread" if diff > 0 else "worse, beyond the seed spread"
    return {"diff": diff, "spread": spread, "verdict": word,
            "p": welch_p(float(a), float(sa), better.get("n"), float(b), float(sb),
                         worse.get("n"))}


def welch_p(mean_a: float, std_a: float, n_a: int | None, mean_b: float, std_b: float,
            n_b: int | None) -> float | None:
    """Two-sided p-value of Welch's t-test from means, sample stds (n - 1) and counts."""
    if not n_a or not n_b or n_a < 2 or n_b < 2 or (std_a == 0 and std_b == 0):
        return None
    from scipy import stats

    return float(stats.ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b,
                                            equal_var=False).pvalue)
