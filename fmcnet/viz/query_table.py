"""The per-query table of one setting and gallery trial: which queries a filter keeps,
in which order the browser walks them, and the CSV of a view.

Columns of run A's ranking (`fmcnet.viz.rankings.Ranked`) and, when comparing, run B's of
the same queries against the same gallery: camera, identity, image path, AP, first-match
rank, AP(B) - AP(A). Filters and orders are numpy over all queries at once.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from fmcnet.utils import FMCNetError
from fmcnet.viz.rankings import Ranked, SettingData

SORT_INDEX, SORT_AP, SORT_RANK, SORT_DELTA = "index", "ap", "rank", "delta"
# which queries "failures only" keeps; a failure: a valid query whose rank-1 item is wrong
FAIL_ALL, FAIL_A, FAIL_B, FAIL_A_NOT_B, FAIL_B_NOT_A = "all", "a", "b", "a_not_b", "b_not_a"


@dataclass
class QueryTable:
    """Per-query columns of one setting and trial, for run A and (optionally) run B."""

    cams: np.ndarray
    pids: np.ndarray
    paths: list[str]
    a: Ranked
    b: Ranked | None = None

    @property
    def delta(self) -> np.ndarray:
        """AP(B) - AP(A) per query (NaN without B or without a true match)."""
        if self.b is None:
            return np.full(len(self.pids), np.nan)
        return self.b.ap - self.a.ap

    def select(self, *, cams: tuple[int, ...] = (), identity: int | None = None,
               failures: str = FAIL_ALL, ap_range: tuple[float, float] = (0.0, 1.0)
               ) -> np.ndarray:
        """Boolean mask of the queries the filters keep (AP range on run A; a narrowed
        range drops queries without a true match, whose AP is undefined)."""
        keep = np.ones(len(self.pids), bool)
        if cams:
            keep &= np.isin(self.cams, np.asarray(cams, np.int64))
        if identity is not None:
            keep &= self.pids == int(identity)
        fa = self.a.failures
        fb = self.b.failures if self.b is not None else np.zeros_like(fa)
        if failures == FAIL_A:
            keep &= fa
        elif failures == FAIL_B:
            keep &= fb
        elif failures == FAIL_A_NOT_B:
            keep &= fa & (self.b.first == 1 if self.b is not None else False)
        elif failures == FAIL_B_NOT_A:
            keep &= fb & (self.a.first == 1)
        elif failures != FAIL_ALL:
            raise FMCNetError(f"unknown failure filter {failures!r}")
        lo, hi = ap_range
        if lo > 0.0 or hi < 1.0:
            with np.errstate(invalid="ignore"):
                keep &= (self.a.ap >= lo - 1e-12) & (self.a.ap <= hi + 1e-12)
        return keep

    def order(self, mask: np.ndarray, sort: str = SORT_INDEX, reverse: bool = False) -> np.ndarray:
        """Query indices kept by `mask` in browsing order. AP: worst first; rank: the first
        true match's rank, worst first; delta: AP(B) - AP(A), most negative first (where
        B loses most). Queries without the key (no true match) always come last; `reverse`
        flips the others."""
        qs = np.flatnonzero(mask)
        if sort == SORT_INDEX:
            return qs[::-1].copy() if reverse else qs
        if sort == SORT_AP:
            key = self.a.ap[qs]
        elif sort == SORT_RANK:
            key = -self.a.first[qs].astype(np.float64)
            key[self.a.first[qs] == 0] = np.nan
        elif sort == SORT_DELTA:
            key = self.delta[qs]
        else:
            raise FMCNetError(f"unknown order {sort!r}; choose index, ap, rank or delta")
        key = np.where(np.isnan(key), np.inf, -key if reverse else key)
        return qs[np.argsort(key, kind="stable")]

    def csv_text(self, view: np.ndarray, *, setting: str, trial: int, label_a: str,
                 label_b: str = "") -> str:
        """The view as CSV: one row per query in browsing order (AP in percent, rank 0 =
        no true match among the kept gallery images)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        head = ["setting", "trial", "query", "camera", "identity", "image",
                "run_a", "ap_a", "first_match_rank_a"]
        if self.b is not None:
            head += ["run_b", "ap_b", "first_match_rank_b", "delta_ap"]
        w.writerow(head)

        def pct(x: float) -> str:
            return "" if np.isnan(x) else f"{100 * x:.4f}"

        for q in np.asarray(view, np.int64).tolist():
            row = [setting, trial, q, int(self.cams[q]), int(self.pids[q]), self.paths[q],
                   label_a, pct(self.a.ap[q]), int(self.a.first[q])]
            if self.b is not None:
                row += [label_b, pct(self.b.ap[q]), int(self.b.first[q]), pct(self.delta[q])]
            w.writerow(row)
        return buf.getvalue()


def query_table(setting: SettingData, a: Ranked, b: Ranked | None = None) -> QueryTable:
    """The per-query table of trial `a` (queries of that trial, as `a.q_rows` maps them)."""
    paths = np.asarray(setting.query.paths)[a.q_rows].tolist()
    return QueryTable(a.q_cams, a.q_pids, paths, a, b)
