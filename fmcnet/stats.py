"""Statistics over training seeds: mean ± sample standard deviation, Welch's t-test, and
the rules that say whether one row of a study beats another (`verdict`: the seed spread;
`compare`: Welch's or the paired t-test, the study's verdicts).

The sweep reports every row with seeds as `mean_std` of its finished seeds; the study
document (`fmcnet.study`) compares the rows its spec names with `verdict`, and
`verdict_lines` writes the comparisons as the table the study and the notebooks show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def compare(better: Mapping[Any, float], worse: Mapping[Any, float], *, paired: bool = False,
            alpha: float = 0.05) -> dict[str, Any]:
    """Per-seed values of two rows (`{seed: value}`): the difference of their means, the
    summed sample standard deviations, and the two-sided p-value of Welch's t-test -- or,
    with `paired`, of the paired t-test over the seeds both have (two features of one run).

    The verdict is the test's at level `alpha`: "better" or "worse" when p < alpha, else
    "not resolved"; with fewer than two seeds on a side there is no test.
    """
    a = [float(v) for v in better.values() if v is not None]
    b = [float(v) for v in worse.values() if v is not None]
    if not a or not b:
        return {"diff": None, "spread": None, "p": None, "n": [len(a), len(b)],
                "verdict": "not run"}
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    out: dict[str, Any] = {"diff": ma - mb, "spread": None if sa is None or sb is None
                           else sa + sb, "p": None, "n": [len(a), len(b)]}
    if paired:
        common = [s for s in better if s in worse and better[s] is not None
                  and worse[s] is not None]
        out["n"] = [len(common), len(common)]
        if len(common) >= 2:
            from scipy import stats

            d = np.array([float(better[s]) - float(worse[s]) for s in common])
            out["diff"] = float(d.mean())
            out["p"] = 1.0 if not d.any() else float(
                stats.ttest_rel([float(better[s]) for s in common],
                                [float(worse[s]) for s in common]).pvalue)
    elif sa is not None and sb is not None:
        out["p"] = welch_p(ma, sa, len(a), mb, sb, len(b))
    if out["p"] is None:
        out["verdict"] = "no test (one seed)" if min(out["n"]) < 2 else "not resolved"
    elif out["p"] < alpha:
        out["verdict"] = "better" if out["diff"] > 0 else "worse"
    else:
        out["verdict"] = "not resolved"
    return out


def verdict_lines(found: Sequence[Mapping[str, Any]]) -> list[str]:
    """The verdict table: comparison -> difference -> p -> verdict, R1 then mAP."""
    lines = ["| comparison | ids | ΔR1 | p (R1) | verdict (R1) | ΔmAP | p (mAP) | seeds |",
             "|---|---|---:|---:|---|---:|---:|---:|"]
    for c in found:
        r1, mp = c["R1"], c["mAP"]
        test = "paired t-test" if c["paired"] else "Welch"
        lines.append(
            f"| {c['what']} (`{c['better']}` − `{c['worse']}`) | {c['ids']} | "
            f"{_num(r1['diff'], sign=True)} | {_p(r1['p'])} | **{r1['verdict']}** ({test}) | "
            f"{_num(mp['diff'], sign=True)} | {_p(mp['p'])} | {r1['n'][0]} / {r1['n'][1]} |")
    return lines


def _p(p: float | None) -> str:
    return "—" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _num(x: Any, *, sign: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.1f}" if sign else f"{x:.1f}"
