"""Split lists are checked where they are read: no identity in two lists, none twice.

A test identity that trains inflates every number a VI-ReID result reports, and nothing
downstream can tell: the model has simply seen the person. So every loader hands the
lists it read (SYSU-MM01's ``exp/{train,val,test}_id.txt`` -- the synthetic set's too --,
RegDB's four ``idx`` lists, LLCM's two training lists and ``idx/test_id.txt``) to
`check_repeats` and `check_disjoint`, which refuse

* an entry listed twice in one list (a repeated test id changes the gallery that the
  AGW / DEEN draws take, and with it the metrics; a repeated row counts an image twice);
* an identity (or, for row lists, an image) in two lists: training and test,
  training and validation, validation and test.

Every refusal is one `SplitError` of one shape: the dataset, each file with the list it
holds, the entries (identities as the owners write them), why it matters and what to do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fmcnet.data.base import DatasetError

_SHOWN = 10  # entries named in a message; the rest are counted


class SplitError(DatasetError):
    """Split lists that leak identities between training and evaluation, or repeat one."""


@dataclass(frozen=True)
class SplitList:
    """One list of a split as read from its file.

    `name` says what the list is ("training list", "test list", ...); `path` is the file
    it was read from; `entries` are its identities (or image rows) in file order, repeats
    kept; `kind` names one entry ("identity", "row"). `label` formats an entry for a
    message (SYSU-MM01 and LLCM identities as their folders are named: ``0005``).
    """

    name: str
    path: Path
    entries: tuple
    kind: str = "identity"

    def label(self, entry: object) -> str:
        return f"{entry:04d}" if isinstance(entry, int) else str(entry)


def _shown(labels: Iterable[str]) -> str:
    labels = list(labels)
    more = f" ... ({len(labels)} in all)" if len(labels) > _SHOWN else ""
    return ", ".join(labels[:_SHOWN]) + more


def _plural(kind: str, n: int) -> str:
    if n == 1:
        return kind
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def refuse(title: str, where: str, problem: str, labels: Sequence[str], why: str,
           todo: str) -> SplitError:
    """The one message shape: `<title> split lists: <where> <problem> <entries>; <why>. <todo>`."""
    return SplitError(f"{title} split lists: {where} {problem} {_shown(labels)}; {why}. {todo} "
                      "(see docs/datasets.md)")


def check_repeats(title: str, split: SplitList) -> None:
    """Refuse an entry that `split` lists more than once."""
    counts = Counter(split.entries)
    repeated = [e for e, n in counts.items() if n > 1]
    if repeated:
        labels = [f"{split.label(e)} ({counts[e]} times)" for e in repeated]
        raise refuse(
            title, f"{split.path} ({split.name}) lists", f"{_plural(split.kind, len(repeated))}",
            labels,
            "a list names each entry once: a repeated test identity changes the gallery the "
            "trials draw (and the metrics), a repeated row counts one image twice",
            "Remove the repeats; a file edited or merged by hand is the usual cause",
        )


def check_disjoint(title: str, a: SplitList, b: SplitList, *, what: str | None = None,
                   why: str | None = None) -> None:
    """Refuse entries that both `a` and `b` hold (`what` names them, default `a.kind`)."""
    shared = set(a.entries) & set(b.entries)
    if shared:
        order = {e: i for i, e in reversed(list(enumerate(a.entries)))}
        labels = [a.label(e) for e in sorted(shared, key=order.__getitem__)]
        kind = what or a.kind
        raise refuse(
            title, f"{a.path} ({a.name}) and {b.path} ({b.name}) share",
            _plural(kind, len(shared)), labels,
            why or "an identity in two lists is evaluated on what the model trained on, "
                   "which inflates every metric",
            f"Each {kind} belongs to one list: remove {'it' if len(shared) == 1 else 'them'} "
            "from one of the files, or restore the owners' lists",
        )
