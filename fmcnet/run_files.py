"""The one reader of a run folder's files.

Figures, the notebooks' `open_run`, the sweep and study reports, the ranking browser and
`train` itself read `results.json`, `metrics.jsonl`, `config.yaml`, `resumes.jsonl`,
`eval/*.npz` (and the sweep's own JSON files) through these functions, so a damaged
file is one `RunFileError` that names the file, what is wrong with it and what to do --
never a traceback after half the figures were drawn, and never a row reported "not run".
`check_run_files` reads every one of them, for the callers that must know before they
start (`open_run`, and with it `python -m fmcnet figures`).

The writers are elsewhere: `fmcnet.run_folder` (config.yaml, metrics.jsonl, resumes.jsonl)
and `fmcnet.evaluation.run` (results.json, eval/*.npz).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fmcnet.utils import FMCNetError

# What to do about each damaged file, in the user's terms. A finished run's
# `train --out R --resume` (with the configuration it was trained with) loads its last
# checkpoint, trains nothing and evaluates it again: results.json and eval/ are rewritten.
_REEVALUATE = ("move it aside and evaluate the run again: `python -m fmcnet train --out {run} "
               "--resume` with the run's configuration (e.g. --config {run}/config.yaml) "
               "evaluates a finished run again and rewrites it")
ADVICE = {
    "results.json": _REEVALUATE,
    "eval": _REEVALUATE.replace("move it aside", "move {run}/eval aside"),
    "metrics.jsonl": ("the training log: repair or delete that line (one JSON record per "
                      "line), or move the file aside (the curves are lost, the checkpoints "
                      "and results are not)"),
    "config.yaml": ("move it aside: the next `--resume` writes it again (the checkpoint "
                    "keeps the configuration the run was trained with)"),
    "resumes.jsonl": ("the record of the run's resumes: repair or delete that line, or move "
                      "the file aside"),
}


class RunFileError(FMCNetError):
    """A run file that cannot be read: `path`, the `problem` ("is not JSON (...)") and
    what to do. Callers with better advice compose their own from `path` and `problem`."""

    def __init__(self, path: str | os.PathLike, problem: str, advice: str = "") -> None:
        self.path, self.problem, self.advice = Path(path), problem, advice
        super().__init__(f"{self.path} {problem}" + (f"; {advice}" if advice else ""))


def _advice(path: Path, kind: str | None = None) -> str:
    kind = kind or path.name
    run = path.parent.parent if kind == "eval" else path.parent
    return ADVICE.get(kind, "move it aside").format(run=run)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFileError(path, "does not exist") from None
    except IsADirectoryError:
        raise RunFileError(path, "is a folder, not a file", _advice(path)) from None
    except PermissionError:
        raise RunFileError(path, "is not readable for you (permission denied)",
                           "ask its owner, or copy the run") from None
    except UnicodeDecodeError as exc:
        raise RunFileError(path, f"is not text ({exc.reason} at byte {exc.start})",
                           _advice(path)) from None
    except OSError as exc:
        raise RunFileError(path, f"cannot be read ({exc.strerror or exc})") from None


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def read_json_file(path: str | os.PathLike, *, missing_ok: bool = False,
                   what: str = "a mapping") -> dict[str, Any] | None:
    """A JSON file that must hold an object (None when missing and `missing_ok`)."""
    path = Path(path)
    if missing_ok and not path.exists():
        return None
    text = _text(path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RunFileError(path, f"is not JSON ({exc})", _advice(path)) from None
    if not isinstance(data, dict):
        raise RunFileError(path, f"holds {_kind(data)}, not {what}", _advice(path))
    return data


def read_results(run_dir: str | os.PathLike, *, missing_ok: bool = False
                 ) -> dict[str, Any] | None:
    """`<run>/results.json` (or the file itself when given): a mapping whose `settings`
    map each evaluation setting to its numbers."""
    path = Path(run_dir)
    path = path if path.suffix == ".json" else path / "results.json"
    results = read_json_file(path, missing_ok=missing_ok, what="the results mapping")
    if results is None:
        return None
    settings = results.get("settings")
    if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
        found = "has no `settings`" if settings is None else \
            f"has {_kind(settings)} as `settings`"
        raise RunFileError(path, f"{found}, not a mapping of setting -> numbers", _advice(path))
    return results


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a JSON-lines log, in order; empty when there is none.

    A last line without its newline that is not JSON is a record a kill (or the writer,
    right now) cut short: it is left out. Any other line that is not a JSON object is an
    error naming its number."""
    path = Path(path)
    if not path.exists():
        return []
    text = _text(path)
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            if number == len(lines):  # no newline after it: cut short
                break
            raise RunFileError(path, f"line {number} is not a JSON record ({exc}: "
                               f"{line[:60]!r})", _advice(path)) from None
        if not isinstance(record, dict):
            raise RunFileError(path, f"line {number} holds {_kind(record)}, not a record "
                               "(a JSON object)", _advice(path))
        records.append(record)
    return records


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of `<run>/metrics.jsonl`, in order; empty before the first one."""
    return read_jsonl(Path(run_dir) / "metrics.jsonl")


def read_resumes(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every line of `<run>/resumes.jsonl`: each resume's step and the keys it changed."""
    return read_jsonl(Path(run_dir) / "resumes.jsonl")


def read_config(run_dir: str | os.PathLike, *, missing_ok: bool = False
                ) -> dict[str, Any] | None:
    """`<run>/config.yaml`, the run's current configuration, as a mapping of key: value."""
    path = Path(run_dir) / "config.yaml"
    if missing_ok and not path.exists():
        return None
    try:
        data = yaml.safe_load(_text(path))
    except yaml.YAMLError as exc:
        raise RunFileError(path, f"is not valid YAML ({' '.join(str(exc).split())})",
                           _advice(path)) from None
    if not isinstance(data, dict):
        raise RunFileError(path, f"holds {_kind(data)}, not the run's configuration (a "
                           "mapping of key: value)", _advice(path))
    return data


def _npz_error(path: Path, exc: BaseException) -> RunFileError:
    detail = f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")
    if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
        detail = "it holds Python objects, which an evaluation file never contains"
    return RunFileError(path, f"is not a readable evaluation file ({detail})",
                        _advice(path, "eval"))


def read_eval(path: str | os.PathLike, *, skip: Iterable[str] = ()
              ) -> tuple[dict[str, np.ndarray], set[str]]:
    """An evaluation file `eval/<setting>.npz`: ({name: array} of every array but `skip`,
    the names of all arrays in it)."""
    path = Path(path)
    skip = set(skip)
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            return {k: npz[k] for k in npz.files if k not in skip}, names
    except FileNotFoundError:
        raise RunFileError(path, "does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _npz_error(path, exc) from None


def read_eval_array(path: str | os.PathLike, key: str) -> np.ndarray | None:
    """One array of an evaluation file (None when the file does not have it)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return npz[key] if key in npz.files else None
    except FileNotFoundError:
        raise RunFileError(path, "does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _npz_error(path, exc) from None


def eval_names(path: str | os.PathLike) -> set[str]:
    """The arrays an evaluation file holds, read from its index only (a truncated or
    overwritten file has none that numpy can find)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return set(npz.files)
    except FileNotFoundError:
        raise RunFileError(path, "does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _npz_error(path, exc) from None


def check_run_files(run_dir: str | os.PathLike) -> None:
    """Read every run file `run_dir` holds (config.yaml, results.json, metrics.jsonl,
    resumes.jsonl; the index of each eval/*.npz): the first damaged one raises its
    `RunFileError`."""
    run_dir = Path(run_dir)
    read_config(run_dir, missing_ok=True)
    read_results(run_dir, missing_ok=True)
    read_metrics(run_dir)
    read_resumes(run_dir)
    for path in sorted((run_dir / "eval").glob("*.npz")):
        eval_names(path)
