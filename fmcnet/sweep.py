"""Notebook sweeps: one papermill execution of a notebook per row, then one summary table.

The spec's format, and how it is read and checked: `fmcnet.sweep_spec`.

Each run of a row writes one run folder: `<row>/` without seeds, `<row>/seed_<s>/` (the
configuration's `seed` = s) with them. The notebook runner executes the notebook with
parameters `profile`, `run_dir` (the run folder, where `train` writes `results.json`),
`config_files`, `overrides` and `resume` and keeps the executed notebook in the run
folder; the train runner calls `python -m fmcnet train` in a subprocess (its output in
`train.log`), which resumes an interrupted run from its last checkpoint. A run whose
`results.json` exists (from the same profile) is skipped on a re-run; a failing run is
reported (message and output notebook or log) without stopping the others and retried on
the next run; a run whose files cannot be read (`fmcnet.run_files`) is reported "corrupt",
naming the file, and never trained over. A row with seeds reports the mean and the sample standard deviation (n - 1)
over its finished seeds, of R1 / mAP and of every number in results.json["features"].
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fmcnet.run_files import (
    RunFileError,
    read_config,
    read_json_file,
    read_metrics,
    read_results,
)
from fmcnet.run_lock import hold_run
from fmcnet.stats import mean_std
from fmcnet.sweep_spec import (  # noqa: F401 (callers import the spec from here too)
    Comparison,
    SweepError,
    SweepRow,
    SweepSpec,
    default_out,
    load_spec,
    resolve,
    seed_list,
)
from fmcnet.utils import atomic_write_json, atomic_write_text

FAILED_FILE = "failed.json"
TRAIN_LOG = "train.log"  # the train runner's output, in the run folder
RUN_FILE = "sweep_run.json"  # the train runner's command, wall time and machine per attempt


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object of a run folder (the sweep's own files too), None when missing; a
    damaged one raises `RunFileError` naming it (the row is reported "corrupt")."""
    return read_json_file(path, missing_ok=True)


def _metrics(results: dict[str, Any], setting: str | None) -> tuple[str | None, dict]:
    settings = results.get("settings") or {}
    if not settings:
        return None, {}
    if setting is None:
        setting = next(iter(settings))
    if setting not in settings:  # never report another setting's numbers under this one
        return setting, {}
    return setting, settings[setting]


def row_seeds(spec: SweepSpec, row: SweepRow, seeds: list[int] | None = None) -> list[int | None]:
    """The training seeds of `row`: `seeds` (the command line) beats the row's, which beat
    the spec's; `[None]`: one run in the row folder with the configuration's own seed."""
    source = spec.rows[row.same_as] if row.same_as else row
    chosen = seeds if seeds is not None else source.seeds if source.seeds is not None else spec.seeds
    return [None] if chosen is None else list(chosen)


def row_run_folder(out: Path, row_name: str, seed: int | None) -> Path:
    """The run folder of a row for one seed: `<out>/<row>/` for an unseeded row,
    `<out>/<row>/seed_<s>/` for seed s."""
    return out / row_name if seed is None else out / row_name / f"seed_{seed}"


def _numbers(tree: Any, prefix: str) -> dict[str, float]:
    """The numeric leaves of a nested mapping as {"prefix/a/b": value}."""
    if isinstance(tree, bool):
        return {}
    if isinstance(tree, (int, float)):
        return {prefix: float(tree)}
    if isinstance(tree, dict):
        out: dict[str, float] = {}
        for key, value in tree.items():
            out.update(_numbers(value, f"{prefix}/{key}"))
        return out
    return {}


VAL_SETTING = "val/all/single"  # fmcnet.data.sysu.VAL_SETTING (no import: data is a floor up)
# D's share of fooled and caught features (0.5: chance) and its BCE loss (2 x 2 ln 2 = 2.77
# for a D that outputs 0.5 on both directions' real and generated features).
DISCRIMINATOR_KEYS = ("disc_acc", "loss/gan_d")


def run_diagnostics(folder: Path, results: dict[str, Any]) -> dict[str, float]:
    """The numbers a run records beyond the table: results.json["features"] (retrieval per
    feature), the validation ids' R1 / mAP / mINP ("val/..."), and, from the last
    metrics.jsonl record, the SFF weights, the hinge activity
    and the discriminators' accuracy and loss."""
    out = _numbers(results.get("features") or {}, "features")
    # the held-out validation ids (validate=true): where a study makes its choices
    val = (results.get("settings") or {}).get(VAL_SETTING) or {}
    out.update({f"val/{k}": float(val[k]) for k in ("R1", "mAP", "mINP") if k in val})
    records = read_metrics(folder)
    last = records[-1] if records else {}
    out.update({k: float(v) for k, v in last.items()
                if (k.startswith(("omega/", "hinge/")) or k in DISCRIMINATOR_KEYS)
                and isinstance(v, (int, float))})
    return out


def run_status(spec: SweepSpec, folder: Path, profile: str | None) -> dict[str, Any]:
    """What is on disk in one run folder: status "done", "failed", "conflict", "corrupt"
    (a run file that cannot be read: the message names it) or "not run"; `config` is the
    run's config.yaml ({} when it has none)."""
    output = folder / (spec.notebook.name if spec.runner == "notebook" else TRAIN_LOG)
    info: dict[str, Any] = {"folder": str(folder), "status": "not run", "message": "",
                            "R1": None, "mAP": None, "notebook": str(output), "config": {}}
    try:
        return _run_status(spec, folder, profile, info)
    except RunFileError as exc:
        info.update(status="corrupt", message=str(exc), R1=None, mAP=None)
        return info


def _run_status(spec: SweepSpec, folder: Path, profile: str | None,
                info: dict[str, Any]) -> dict[str, Any]:
    info["config"] = read_config(folder, missing_ok=True) or {}
    results = read_results(folder, missing_ok=True)
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
                    dataset=results.get("dataset"), profile=results.get("profile"),
                    commit=results.get("commit"), device=results.get("device"),
                    trials=results.get("trials"),
                    diagnostics=run_diagnostics(folder, results))
        attempts = (_read_json(folder / RUN_FILE) or {}).get("attempts") or []
        info["wall_s"] = sum(a.get("wall_s", 0.0) for a in attempts) if attempts else None
        info["machine"] = attempts[-1].get("machine") if attempts else None
        return info
    failed = _read_json(folder / FAILED_FILE)
    if failed is not None:
        info.update(status="failed", message=failed.get("message", ""),
                    notebook=failed.get("notebook", failed.get("log", info["notebook"])))
    return info


def row_status(spec: SweepSpec, row: SweepRow, out: Path, profile: str | None,
               seeds: list[int] | None = None) -> dict[str, Any]:
    """The row over its seeds: status ("done" when every seed is), R1 / mAP as the mean of
    the finished seeds with R1_std / mAP_std, `per_seed` results, `diagnostics`
    ({name: (mean, std)}) and `run_folders` (one per seed asked for)."""
    source = spec.rows[row.same_as] if row.same_as else row
    wanted = row_seeds(spec, row, seeds)
    folders = {seed: row_run_folder(out, source.name, seed) for seed in wanted}
    runs = {seed: run_status(spec, folder, profile) for seed, folder in folders.items()}
    info: dict[str, Any] = {
        "row": row.name, "table": row.table, "label": row.label, "paper": row.paper,
        "folder": str(out / source.name), "seeds": [s for s in wanted if s is not None],
        "run_folders": [str(f) for f in folders.values()],
        "same_as": row.same_as,
        "status": "not run", "message": f"same model as {row.same_as}" if row.same_as else "",
    }
    info["notebook"] = next(iter(runs.values()))["notebook"]
    info["config"] = next((r["config"] for r in runs.values() if r["config"]), {})
    done = {seed: r for seed, r in runs.items() if r["status"] == "done"}
    problems = [(seed, r) for seed, r in runs.items()
                if r["status"] in ("conflict", "corrupt", "failed")]
    messages = [info["message"]] if info["message"] else []
    if problems:
        seed, r = problems[0]
        messages.append(r["message"] if seed is None else f"seed {seed}: {r['message']}")
        info.update(status=r["status"], notebook=r["notebook"])
    elif done:
        info["status"] = "done" if len(done) == len(runs) else "partial"
        if len(done) < len(runs):
            messages.append(f"seeds {[s for s in runs if s not in done]} not run yet")
    info["message"] = "; ".join(messages)
    # A conflicting folder holds another experiment: none of its numbers are reported.
    usable = {} if problems and problems[0][1]["status"] == "conflict" else done
    first = next(iter(usable.values()), {})
    info.update({k: first.get(k) for k in ("setting", "dataset", "profile", "trials")})
    info["commits"] = sorted({r["commit"] for r in usable.values() if r.get("commit")})
    info["devices"] = sorted({r["device"] for r in usable.values() if r.get("device")})
    info["machines"] = sorted({r["machine"] for r in usable.values() if r.get("machine")})
    walls = [r["wall_s"] for r in usable.values() if r.get("wall_s") is not None]
    info["wall_s"] = sum(walls) if walls else None
    for metric in ("R1", "mAP"):
        values = [r[metric] for r in usable.values() if r[metric] is not None]
        info[metric], info[f"{metric}_std"] = mean_std(values)
    info["n"] = len(usable)
    info["per_seed"] = {("default" if s is None else s): {"R1": r["R1"], "mAP": r["mAP"],
                                                          "diagnostics": r["diagnostics"]}
                        for s, r in usable.items()}
    names = sorted({k for r in usable.values() for k in r["diagnostics"]})
    info["diagnostics"] = {k: mean_std([r["diagnostics"][k] for r in usable.values()
                                        if k in r["diagnostics"]]) for k in names}
    return info


def collect_sweep(spec_path: str | os.PathLike | SweepSpec, *, profile: str | None = None,
                  out: str | os.PathLike | None = None,
                  seeds: list[int] | None = None) -> list[dict[str, Any]]:
    """The rows' current results (nothing is run): one dict per row, in spec order."""
    spec = spec_path if isinstance(spec_path, SweepSpec) else load_spec(spec_path)
    profile = profile or spec.profile
    out_dir = resolve(out) if out else default_out(spec, profile)
    return [row_status(spec, row, out_dir, profile, seeds) for row in spec.rows.values()]


def _fmt(x: Any, std: Any = None) -> str:
    if x is None:
        return "—"
    return f"{float(x):.2f}" if std is None else f"{float(x):.2f} ± {float(std):.2f}"


def summary_markdown(rows: list[dict[str, Any]], *, title: str = "") -> str:
    """rows x (R1, mAP) with the paper's numbers beside, and a status column; with seeds,
    mean ± sample standard deviation over the finished seeds and their number."""
    seeded = any(r.get("seeds") for r in rows)
    lines = [f"**{title}**", ""] if title else []
    head = "| row | table | label | R1 | mAP | " + ("seeds | " if seeded else "")
    lines += [head + "paper R1 | paper mAP | status |",
              "|---|---|---|---:|---:|" + ("---:|" if seeded else "") + "---:|---:|---|"]
    for r in rows:
        status = r["status"]
        if r.get("message"):
            status += f": {r['message']}"
        if r["status"] == "failed":
            status += f" (see {r['notebook']})"
        paper = r.get("paper") or {}
        n = f"{r.get('n', 0)}/{len(r['seeds'])} | " if seeded else ""
        lines.append(
            f"| {r['row']} | {r.get('table', '')} | {r.get('label', '')} | "
            f"{_fmt(r['R1'], r.get('R1_std'))} | {_fmt(r['mAP'], r.get('mAP_std'))} | {n}"
            f"{_fmt(paper.get('R1'))} | {_fmt(paper.get('mAP'))} | "
            f"{status.replace('|', '/').replace(chr(10), ' ')} |"
        )
    datasets = {r.get("dataset") for r in rows if r.get("dataset")}
    if "synthetic" in datasets:
        lines += ["", "Ours: the built-in synthetic set (SYSU-MM01 layout), NOT SYSU-MM01; the "
                      "paper's numbers (SYSU-MM01 all-search single-shot) are for orientation."]
    else:
        lines += ["", "Paper: FMCNet, CVPR 2022, Tables 2-4 (SYSU-MM01 all-search single-shot)."]
    if seeded:
        lines += ["", "R1 / mAP: mean ± sample standard deviation (n - 1) over the finished "
                      "training seeds (seeds: finished / asked)."]
    return "\n".join(lines) + "\n"


def _error_message(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{exc.__class__.__name__}: {exc}"


def _cli_value(value: Any) -> str:
    """A configuration value as the train command line reads it (a YAML scalar or list)."""
    return value if isinstance(value, str) else json.dumps(list(value) if isinstance(value, tuple) else value)


def _run_overrides(spec: SweepSpec, row: SweepRow, overrides: dict[str, Any] | None,
                   seed: int | None) -> dict[str, Any]:
    merged = {**spec.overrides, **row.overrides, **(overrides or {})}
    if seed is not None:
        merged["seed"] = seed
    return merged


def _fail(folder: Path, message: str, output: Path) -> str:
    key = "notebook" if output.suffix == ".ipynb" else "log"
    atomic_write_json(folder / FAILED_FILE, {"message": message, key: str(output)})
    return message


def run_row(spec: SweepSpec, row: SweepRow, out: Path, *, profile: str | None,
            overrides: dict[str, Any] | None = None, kernel_name: str = "python3",
            seed: int | None = None) -> str | None:
    """Run one row (for one seed) into its run folder; the error message, or None."""
    folder = row_run_folder(out, row.name, seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAILED_FILE).unlink(missing_ok=True)
    run_overrides = _run_overrides(spec, row, overrides, seed)
    if spec.runner == "train":
        return _train_run(row, folder, profile, run_overrides)
    import papermill as pm

    output = folder / spec.notebook.name
    params: dict[str, Any] = {
        **spec.parameters,
        **row.parameters,
        "run_dir": str(folder),
        "config_files": [str(resolve(row.config))] if row.config else [],
        "overrides": run_overrides,
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
        return _fail(folder, _error_message(exc), output)
    if not (folder / "results.json").is_file():
        return _fail(folder, f"the notebook finished but wrote no {folder / 'results.json'}",
                     output)
    return None


def machine() -> str:
    """The CPU model and core count (or the GPUs) of this machine, for provenance."""
    import torch

    from fmcnet.utils import describe_device, pick_device

    return f"{describe_device(pick_device('auto'))}, {platform.system()}, torch {torch.__version__}"


def _train_run(row: SweepRow, folder: Path, profile: str | None,
               overrides: dict[str, Any]) -> str | None:
    """`python -m fmcnet train` for one run in a subprocess, resuming its last checkpoint."""
    cmd = [sys.executable, "-m", "fmcnet", "train", "--out", str(folder)]
    if profile is not None:
        cmd += ["--profile", profile]
    if row.config:
        cmd += ["--config", str(resolve(row.config))]
    # an interrupted run resumes: from its last checkpoint, or from step 0 when it stopped
    # before the first (its config.yaml is there, written first)
    if (folder / "checkpoints" / "last.pt").is_file() or (folder / "config.yaml").is_file():
        cmd.append("--resume")
    cmd += [f"{k}={_cli_value(v)}" for k, v in {"progress": False, **overrides}.items()]
    log = folder / TRAIN_LOG
    try:  # the provenance of earlier attempts, read before this one is made
        record = _read_json(folder / RUN_FILE) or {"attempts": []}
    except RunFileError as exc:
        return _fail(folder, str(exc), log)
    started = time.time()
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT,
                               cwd=str(resolve(".")))
    # Provenance of every attempt (an interrupted run resumes: its attempts add up).
    record.setdefault("attempts", [])
    record["attempts"].append({
        "command": cmd, "exit": code, "wall_s": round(time.time() - started, 1),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    })
    atomic_write_json(folder / RUN_FILE, record)
    if code != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        return _fail(folder, f"exit status {code}: {lines[-1] if lines else 'no output'}", log)
    if not (folder / "results.json").is_file():
        return _fail(folder, f"training finished but wrote no {folder / 'results.json'}", log)
    return None


def run_sweep(
    spec_path: str | os.PathLike,
    *,
    profile: str | None = None,
    out: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    rows: list[str] | None = None,
    seeds: list[int] | None = None,
    progress: bool = True,
    kernel_name: str = "python3",
) -> str:
    """Run every row (or `rows`) x seed that has no result yet; write and return the
    summary table.

    `profile` beats the spec's; `out` defaults to `default_out`; `overrides` (e.g. from
    the command line) apply to every row; `seeds` replaces the spec's and rows' seeds.
    Finished runs are skipped, failures reported.
    """
    from fmcnet.progress import bar as progress_bar

    spec = load_spec(spec_path)
    seeds = seed_list(seeds, "seeds")
    profile = profile or spec.profile
    out_dir = resolve(out) if out else default_out(spec, profile)
    wanted = list(spec.rows) if not rows else rows
    unknown = [r for r in wanted if r not in spec.rows]
    if unknown:
        raise SweepError(f"unknown row(s) {unknown}; the spec has {list(spec.rows)}")
    # rows that only reuse another row's result run that row instead
    to_run = list(dict.fromkeys(spec.rows[r].same_as or r for r in wanted))
    runs = [(name, seed) for name in to_run for seed in row_seeds(spec, spec.rows[name], seeds)]
    # one sweep per folder of runs: a second one is refused, naming this one (each run's
    # own folder is locked again by the `train` that writes it)
    with hold_run(out_dir, "sweep"):
        failures: dict[str, str] = {}
        bar = progress_bar(runs, desc="sweep", unit="run", disable=not progress)
        for name, seed in bar:
            row = spec.rows[name]
            label = name if seed is None else f"{name} seed {seed}"
            bar.set_postfix_str(label)
            folder = row_run_folder(out_dir, name, seed)
            status = run_status(spec, folder, profile)
            if status["status"] in ("done", "conflict", "corrupt"):
                if status["status"] == "corrupt":  # never trained over: the user decides
                    bar.write(f"{label}: corrupt, not run: {status['message']}")
                continue
            message = run_row(spec, row, out_dir, profile=profile, overrides=overrides,
                              kernel_name=kernel_name, seed=seed)
            if message is not None:
                failures[label] = message
                output = spec.notebook.name if spec.runner == "notebook" else TRAIN_LOG
                bar.write(f"{label} failed: {message}\n  see {folder / output}")
        bar.close()
        collected = [row_status(spec, spec.rows[r], out_dir, profile, seeds) for r in wanted]
        title = f"sweep {spec.path.name} · profile {profile or '(notebook default)'} · {out_dir}"
        table = summary_markdown(collected, title=title)
        atomic_write_text(out_dir / "summary.md", table)
    return table
