"""`make notebooks`: execute notebooks 00-08 and keep their outputs, so they read on the web.

```bash
FMCNET_PROFILE=quick python -m fmcnet.notebooks            # = make notebooks
python -m fmcnet.notebooks --only 02 03 --out /tmp/nb      # some, into another folder
```

Each notebook runs top to bottom in a fresh kernel (nbclient), in `notebooks/` as nbval
runs them, with the profile `$FMCNET_PROFILE` names (their parameters cells read it;
`make notebooks` sets `quick`, whose reference run is `runs/demo`, the run `make demo`
writes -- notebook 02 trains it first when it is missing). Every notebook is executed
before any file is written: a failure leaves the notebooks as they were, and while they
run the working tree stays as committed, so the commit each one names in its first cell
(`rendered_from`) is the commit they were rendered from.

Outputs name paths relative to the checkout (`relative_outputs`): a committed notebook
points at nothing on the machine that rendered it. Widget state is not stored (the
ranking browser of notebook 08 needs a live kernel; its exported view is a picture).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fmcnet.utils import FMCNetError, git_commit

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def rendered_from() -> None:
    """Print every notebook's first output: the commit and profile it was rendered from
    (printed, not returned: as a cell's last expression a value would show twice)."""
    print(f"rendered from fmcnet commit {git_commit()} with "
          f"FMCNET_PROFILE={os.environ.get('FMCNET_PROFILE', 'quick')} "
          "(the parameters cell reads it)")


def _checkout() -> Path:
    from fmcnet.analysis.runs import repo_root

    return repo_root()


def notebook_paths(folder: str | os.PathLike | None = None,
                   only: Sequence[str] = ()) -> list[Path]:
    """Notebooks 00-08 in order, or those whose number or name starts with an entry of `only`."""
    folder = Path(folder) if folder else _checkout() / "notebooks"
    paths = sorted(folder.glob(NOTEBOOK_GLOB))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    if not paths:
        raise FMCNetError(f"no notebook in {folder} matches {list(only) or NOTEBOOK_GLOB}; "
                          "expected notebooks/NN_verb_object.ipynb")
    return paths


def _replace_in_outputs(cells: Iterable[Any], pairs: Sequence[tuple[str, str]]) -> int:
    """Replace each `old` by its `new`, in order, in every text an output holds; returns how
    many outputs changed."""
    changed = 0

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in pairs:
                value = value.replace(old, new)
            return value
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    for cell in cells:
        for out in cell.get("outputs", []):
            before = repr(out)
            for key in ("text", "traceback", "evalue"):
                if key in out:
                    out[key] = fix(out[key])
            for mime, value in (out.get("data") or {}).items():
                if mime.startswith("text/") or mime == "application/json":
                    out["data"][mime] = fix(value)
            changed += repr(out) != before
    return changed


def relative_outputs(nb: Any, root: str | os.PathLike) -> int:
    """Make the outputs of `nb` name no absolute path of this machine: paths in the checkout
    `root` become relative to it, the Python installation `<python>`, the home folder `~`.
    Returns the number of outputs changed."""
    root = str(Path(root).resolve())
    pairs = [(root + os.sep, ""), (root, ".")]
    pairs += [(prefix, "<python>") for prefix in dict.fromkeys((sys.prefix, sys.base_prefix))
              if prefix and not prefix.startswith(root)]
    home = str(Path.home())
    if home not in ("/", ""):
        pairs.append((home, "~"))
    return _replace_in_outputs(nb.cells, pairs)


def _dirty() -> bool:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             cwd=_checkout(), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.stdout.strip())


def execute(path: Path, *, timeout: int | None = None, kernel: str = "python3") -> Any:
    """`path` executed top to bottom in a fresh kernel, in its own folder; the notebook."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
                            store_widget_state=False,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = next((i for i, c in enumerate(nb.cells) if any(
            o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        where = f" in cell {failed}" if failed is not None else ""
        raise FMCNetError(f"{path.name} failed{where}: {exc.ename}: {exc.evalue}; nothing was "
                          "written (open it in JupyterLab, `make lab`, to see why)") from None
    return nb


def render(paths: Sequence[Path], *, out: str | os.PathLike | None = None,
           timeout: int | None = None) -> dict[Path, float]:
    """Execute every notebook of `paths`, then write each over itself (or into `out`) with
    its outputs made relative; returns the seconds each took to execute."""
    import nbformat

    root = _checkout()
    executed, seconds = {}, {}
    for path in paths:
        t0 = time.perf_counter()
        print(f"{path.name}: executing", flush=True)
        nb = execute(path, timeout=timeout)
        seconds[path] = time.perf_counter() - t0
        relative_outputs(nb, root)
        executed[path] = nb
        print(f"{path.name}: {seconds[path]:.0f} s", flush=True)
    target = Path(out) if out else None
    for path, nb in executed.items():
        dest = (target / path.name) if target else path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmcnet.notebooks",
                                     description="execute notebooks 00-08 and store their outputs")
    parser.add_argument("--only", nargs="+", default=(), metavar="NN",
                        help="only the notebooks whose name starts with these (e.g. 02 03)")
    parser.add_argument("--out", default=None,
                        help="write the executed notebooks here instead of over themselves")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds a cell may run (default: no limit)")
    args = parser.parse_args(argv)
    try:
        paths = notebook_paths(only=args.only)
        profile = os.environ.get("FMCNET_PROFILE", "quick")
        print(f"rendering {len(paths)} notebook(s) with FMCNET_PROFILE={profile} at commit "
              f"{git_commit()}")
        if _dirty():
            print("warning: tracked files have uncommitted changes; the notebooks will name "
                  "the commit with -dirty (commit first for a clean provenance)")
        seconds = render(paths, out=args.out, timeout=args.timeout)
    except FMCNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = sum(seconds.values())
    print("executed: " + ", ".join(f"{p.name[:2]} {s:.0f} s" for p, s in seconds.items())
          + f"; {total:.0f} s in all ({total / 60:.1f} min)")
    print(f"written to {args.out or 'notebooks/'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
