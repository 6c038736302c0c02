"""Notebook sweeps: one papermill execution of a notebook per row, then one summary table.

A sweep spec (YAML, e.g. `configs/sweeps/ablations.yaml`):

```yaml
notebook: notebooks/04_train_model.ipynb   # executed once per row
out: runs/sweep-ablations                  # runs/<sweep>/<row>/ per row, summary.md
profile: quick                             # default profile (run_sweep(profile=...) wins)
setting: all/single                        # the results.json setting the table reports
parameters: {}                             # extra papermill parameters for every row
overrides: {}                              # configuration overrides for every row
rows:
  t2_base:
    config: configs/ablations/t2_base.yaml # YAML stacked on the profile (optional)
    overrides: {}                          # row overrides (optional)
    table: 2                               # grouping for the table and the bar chart
    label: Base
    paper: {R1: 57.09, mAP: 53.11}
  t4_no_fmc:
    same_as: t2_base_sfd                   # the same model: reuse that row's result
```

Each row runs the notebook with parameters `profile`, `run_dir` (the row folder, where
`train` writes `results.json`), `config_files`, `overrides` and `resume`; the executed
notebook is kept beside the results as `<row>/<notebook name>`. A row whose
`results.json` exists (from the same profile) is skipped on a re-run; a failing row is
reported (message and output notebook) without stopping the others and retried on the
next run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fmcnet.utils import FMCNetError, atomic_write_json, atomic_write_text

FAILED_FILE = "failed.json"


class SweepError(FMCNetError):
    """A sweep spec that cannot be run (missing file, unknown key, bad row)."""


@dataclass
class SweepRow:
    name: str
    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    table: str = ""
    label: str = ""
    paper: dict[str, float] = field(default_factory=dict)
    same_as: str | None = None


@dataclass
class SweepSpec:
    path: Path
    notebook: Path
    out: Path
    profile: str | None
    setting: str | None
    parameters: dict[str, Any]
    overrides: dict[str, Any]
    rows: dict[str, SweepRow]


_SPEC_KEYS = {"notebook", "out", "profile", "setting", "parameters", "overrides", "rows"}
_ROW_KEYS = {"config", "overrides", "parameters", "table", "label", "paper", "same_as"}


def _resolve(path: str | os.PathLike) -> Path:
    from fmcnet.analysis import repo_path

    return repo_path(path)


def _mapping(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise SweepError(f"sweep spec {where}: `{key}` must be a mapping of key: value, got "
                         f"{value!r}")
    return dict(value)


def load_spec(spec_path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep spec; relative paths are relative to the checkout."""
    path = _resolve(spec_path)
    if not path.is_file():
        raise SweepError(f"sweep spec {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SweepError(f"sweep spec {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SweepError(f"sweep spec {path} must be a mapping with notebook, out and rows")
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise SweepError(f"sweep spec {path}: unknown key(s) {sorted(unknown)}; "
                         f"valid: {sorted(_SPEC_KEYS)}")
    for key in ("notebook", "rows"):
        if key not in data:
            raise SweepError(f"sweep spec {path} lacks `{key}`")
    if not isinstance(data["rows"] or {}, dict):
        raise SweepError(f"sweep spec {path}: `rows` must be a mapping of row name to row "
                         f"(e.g. `t2_base: {{config: ...}}`), got a {type(data['rows']).__name__}")
    rows: dict[str, SweepRow] = {}
    for name, row in (data["rows"] or {}).items():
        row = row or {}
        if isinstance(row, str):  # `name: path/to/config.yaml`
            row = {"config": row}
        if not isinstance(row, dict):
            raise SweepError(f"sweep spec {path}, row {name!r}: expected a mapping of "
                             f"{sorted(_ROW_KEYS)} or a config path, got {row!r}")
        bad = set(row) - _ROW_KEYS
        if bad:
            raise SweepError(f"sweep spec {path}, row {name!r}: unknown key(s) {sorted(bad)}; "
                             f"valid: {sorted(_ROW_KEYS)}")
        rows[str(name)] = SweepRow(
            name=str(name), config=row.get("config"),
            overrides=_mapping(row, "overrides", f"{path}, row {name!r}"),
            parameters=_mapping(row, "parameters", f"{path}, row {name!r}"),
            table=str(row.get("table", "")), label=str(row.get("label", "")),
            paper=_mapping(row, "paper", f"{path}, row {name!r}"),
            same_as=row.get("same_as"),
        )
    for row in rows.values():
        if row.same_as is not None and (row.same_as not in rows or rows[row.same_as].same_as):
            raise SweepError(f"sweep spec {path}, row {row.name!r}: same_as must name a row "
                             f"that runs itself, got {row.same_as!r}")
        if row.config is not None and not _resolve(row.config).is_file():
            raise SweepError(f"sweep spec {path}, row {row.name!r}: config {row.config} "
                             "does not exist")
    notebook = _resolve(data["notebook"])
    if not notebook.is_file():
        raise SweepError(f"sweep spec {path}: notebook {notebook} does not exist")
    return SweepSpec(
        path=path, notebook=notebook,
        out=_resolve(data.get("out") or f"runs/sweep-{path.stem}"),
        profile=data.get("profile"), setting=data.get("setting"),
        parameters=_mapping(data, "parameters", str(path)),
        overrides=_mapping(data, "overrides", str(path)),
        rows=rows,
    )


def default_out(spec: SweepSpec, profile: str | None) -> Path:
    """The spec's `out`; for another profile than the spec's, `<out>-<profile>`.

    So a smoke sweep never lands among (or blocks) the rows of the real one.
    """
    if profile is None or profile == spec.profile:
        return spec.out
    return spec.out.with_name(f"{spec.out.name}-{profile}")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _metrics(results: dict[str, Any], setting: str | None) -> tuple[str | None, dict]:
    settings = results.get("settings") or {}
    if not settings:
        return None, {}
    if setting is None:
        setting = next(iter(settings))
    if setting not in settings:  # never report another setting's numbers under this one
        return setting, {}
    return setting, settings[setting]


def row_status(spec: SweepSpec, row: SweepRow, out: Path, profile: str | None) -> dict[str, Any]:
    """What is on disk for `row`: status "done", "failed", "conflict" or "not run"."""
    source = spec.rows[row.same_as] if row.same_as else row
    folder = out / source.name
    info: dict[str, Any] = {
        "row": row.name, "table": row.table, "label": row.label, "paper": row.paper,
        "folder": str(folder), "R1": None, "mAP": None, "status": "not run", "message": "",
        "notebook": str(folder / spec.notebook.name),
    }
    if row.same_as:
        info["message"] = f"same model as {row.same_as}"
    results = _read_json(folder / "results.json")
    if results is not None:
        if profile is not None and results.get("profile") not in (None, profile):
            info["status"] = "conflict"
            info["message"] = (f"{folder}/results.json is from profile {results.get('profile')!r}, "
                               f"not {profile!r}: choose another --out")
            return info
        setting, metrics = _metrics(results, spec.setting)
        if not metrics:
            info["status"] = "conflict"
            info["message"] = (f"{folder}/results.json has no setting {setting!r}; it holds "
                               f"{sorted(results.get('settings') or {})}")
            return info
        info.update(status="done", setting=setting, R1=metrics.get("R1"), mAP=metrics.get("mAP"),
                    dataset=results.get("dataset"), profile=results.get("profile"))
        return info
    failed = _read_json(folder / FAILED_FILE)
    if failed is not None:
        info.update(status="failed", message=failed.get("message", ""),
                    notebook=failed.get("notebook", info["notebook"]))
    return info


def collect_sweep(spec_path: str | os.PathLike | SweepSpec, *, profile: str | None = None,
                  out: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The rows' current results (nothing is run): one dict per row, in spec order."""
    spec = spec_path if isinstance(spec_path, SweepSpec) else load_spec(spec_path)
    profile = profile or spec.profile
    out_dir = _resolve(out) if out else default_out(spec, profile)
    return [row_status(spec, row, out_dir, profile) for row in spec.rows.values()]


def _fmt(x: Any) -> str:
    return "—" if x is None else f"{float(x):.2f}"


def summary_markdown(rows: list[dict[str, Any]], *, title: str = "") -> str:
    """rows x (R1, mAP) with the paper's numbers beside, and a status column."""
    lines = [f"**{title}**", ""] if title else []
    lines += [
        "| row | table | label | R1 | mAP | paper R1 | paper mAP | status |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        status = r["status"]
        if r.get("message"):
            status += f": {r['message']}"
        if r["status"] == "failed":
            status += f" (see {r['notebook']})"
        paper = r.get("paper") or {}
        lines.append(
            f"| {r['row']} | {r.get('table', '')} | {r.get('label', '')} | {_fmt(r['R1'])} | "
            f"{_fmt(r['mAP'])} | {_fmt(paper.get('R1'))} | {_fmt(paper.get('mAP'))} | "
            f"{status.replace('|', '/').replace(chr(10), ' ')} |"
        )
    datasets = {r.get("dataset") for r in rows if r.get("dataset")}
    if "synthetic" in datasets:
        lines += ["", "Ours: the built-in synthetic set (SYSU-MM01 layout), NOT SYSU-MM01; the "
                      "paper's numbers (SYSU-MM01 all-search single-shot) are for orientation."]
    else:
        lines += ["", "Paper: FMCNet, CVPR 2022, Tables 2-4 (SYSU-MM01 all-search single-shot)."]
    return "\n".join(lines) + "\n"


def _error_message(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{exc.__class__.__name__}: {exc}"


def run_row(spec: SweepSpec, row: SweepRow, out: Path, *, profile: str | None,
            overrides: dict[str, Any] | None = None, kernel_name: str = "python3") -> str | None:
    """Execute the notebook for one row into `<out>/<row>/`; the error message, or None."""
    import papermill as pm

    folder = out / row.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAILED_FILE).unlink(missing_ok=True)
    output = folder / spec.notebook.name
    params: dict[str, Any] = {
        **spec.parameters,
        **row.parameters,
        "run_dir": str(folder),
        "config_files": [str(_resolve(row.config))] if row.config else [],
        "overrides": {**spec.overrides, **row.overrides, **(overrides or {})},
        "resume": True,
    }
    if profile is not None:
        params["profile"] = profile
    try:
        pm.execute_notebook(
            str(spec.notebook), str(output), parameters=params, kernel_name=kernel_name,
            cwd=str(spec.notebook.parent), progress_bar=False, log_output=False,
        )
    except Exception as exc:  # noqa: BLE001 - any failure of a row is reported, not raised
        message = _error_message(exc)
        atomic_write_json(folder / FAILED_FILE, {"message": message, "notebook": str(output)})
        return message
    if not (folder / "results.json").is_file():
        message = f"the notebook finished but wrote no {folder / 'results.json'}"
        atomic_write_json(folder / FAILED_FILE, {"message": message, "notebook": str(output)})
        return message
    return None


def run_sweep(
    spec_path: str | os.PathLike,
    *,
    profile: str | None = None,
    out: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    rows: list[str] | None = None,
    progress: bool = True,
    kernel_name: str = "python3",
) -> str:
    """Run every row (or `rows`) that has no result yet; write and return the summary table.

    `profile` beats the spec's; `out` defaults to `default_out`; `overrides` (e.g. from
    the command line) apply to every row. Finished rows are skipped, failures reported.
    """
    from fmcnet.progress import bar as progress_bar

    spec = load_spec(spec_path)
    profile = profile or spec.profile
    out_dir = _resolve(out) if out else default_out(spec, profile)
    wanted = list(spec.rows) if not rows else rows
    unknown = [r for r in wanted if r not in spec.rows]
    if unknown:
        raise SweepError(f"unknown row(s) {unknown}; the spec has {list(spec.rows)}")
    # rows that only reuse another row's result run that row instead
    to_run = list(dict.fromkeys(spec.rows[r].same_as or r for r in wanted))
    failures: dict[str, str] = {}
    bar = progress_bar(to_run, desc="sweep", unit="row", disable=not progress)
    for name in bar:
        row = spec.rows[name]
        bar.set_postfix_str(name)
        status = row_status(spec, row, out_dir, profile)
        if status["status"] in ("done", "conflict"):
            continue
        message = run_row(spec, row, out_dir, profile=profile, overrides=overrides,
                          kernel_name=kernel_name)
        if message is not None:
            failures[name] = message
            bar.write(f"row {name} failed: {message}\n  see {out_dir / name / spec.notebook.name}")
    bar.close()
    collected = [row_status(spec, spec.rows[r], out_dir, profile) for r in wanted]
    title = f"sweep {spec.path.name} · profile {profile or '(notebook default)'} · {out_dir}"
    table = summary_markdown(collected, title=title)
    atomic_write_text(out_dir / "summary.md", table)
    return table
