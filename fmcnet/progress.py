"""Progress that reads well where it goes: bars on a terminal or in a notebook, lines in a log.

`make demo > demo.log 2>&1` or a papermill batch job writes to a file, where tqdm's
redrawn (and nested) bars become a wall of carriage returns and escape codes. There,
`bar` prints one plain line when a bar finishes (an epoch, say), and, for long loops,
at most one line per `interval` seconds in between.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

# a log line at most this often while one bar runs (a long GPU epoch), seconds
LINE_INTERVAL = 60.0
_now = time.monotonic  # the clock, replaceable in tests


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill, nbval): tqdm draws a widget there."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def interactive(streams: Iterable[TextIO | None] | None = None) -> bool:
    """Bars are drawn in a notebook, or when stdout and stderr are both terminals."""
    if in_notebook():
        return True
    streams = (sys.stdout, sys.stderr) if streams is None else streams
    return all(s is not None and hasattr(s, "isatty") and s.isatty() for s in streams)


class LineProgress:
    """tqdm's interface (iterate, `update`, `set_postfix`, `close`) printing plain lines.

    A line reads `<desc>: <n>/<total> <unit> in <s> s, key=value, ...` and is printed
    when the bar closes (when `line` is true) and at most every `interval` seconds while
    it runs; nothing is redrawn.
    """

    def __init__(self, iterable: Iterable | None = None, *, desc: str = "", total: int | None = None,
                 unit: str = "it", initial: int = 0, line: bool = True,
                 interval: float = LINE_INTERVAL, file: TextIO | None = None, **_: Any) -> None:
        self.iterable = iterable
        self.desc, self.unit, self.line, self.interval = desc, unit, line, interval
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = initial + len(iterable)
        self.total, self.n = total, initial
        self.postfix: dict[str, Any] = {}
        self.file = file
        self._t0 = self._last_line = _now()
        self._closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._maybe_line()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}
        self._maybe_line()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = {"": s}

    def write(self, s: str) -> None:
        print(s, file=self.file or sys.stdout, flush=True)

    def text(self, now: float | None = None) -> str:
        now = _now() if now is None else now
        total = f"/{self.total}" if self.total is not None else ""
        parts = [f"{self.desc + ': ' if self.desc else ''}{self.n}{total} {self.unit} "
                 f"in {now - self._t0:.1f} s"]
        parts += [f"{k}={v}" if k else str(v) for k, v in self.postfix.items()]
        return ", ".join(parts)

    def _maybe_line(self) -> None:
        now = _now()
        if self.interval and now - self._last_line >= self.interval:
            self._last_line = now
            self.write(self.text(now))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.line:
                self.write(self.text())


def bar(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None,
        unit: str = "it", leave: bool = True, line: bool | None = None,
        interval: float = LINE_INTERVAL, **kw: Any) -> Any:
    """A tqdm bar when `interactive()`, else a `LineProgress` (no escape codes in a log).

    `line`: print a line when the bar closes in a log (default: `leave`, so the short
    transient bars -- one per extraction batch loop -- stay silent there); `interval`:
    seconds between lines while it runs (0: none). Other keywords go to tqdm.
    """
    if kw.pop("disable", False):
        return LineProgress(iterable, total=total, line=False, interval=0)
    if interactive():
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, **kw)
    return LineProgress(iterable, desc=desc, total=total, unit=unit,
                        line=leave if line is None else line, interval=interval,
                        initial=kw.get("initial", 0))
