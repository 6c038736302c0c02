"""Command line: ``python -m fmcnet {synthesize,dataset-info,train,evaluate,demo,sweep,gpu-check,
figures}``.

Errors meant for the user (bad dataset trees, bad configuration, mismatched
checkpoints) print one message and exit non-zero, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from fmcnet.config import PROFILES, Config, make_config, parse_overrides
from fmcnet.utils import FMCNetError, atomic_write_json

DATASETS = ("synthetic", "heldout", "sysu", "regdb", "llcm")
REGDB_TRIALS = tuple(range(1, 11))  # `--trial all`: the ten splits (docs/protocols.md)


def _config(args: argparse.Namespace, **extra: Any) -> Config:
    overrides = parse_overrides(getattr(args, "overrides", []) or [])
    for key in ("dataset", "trial"):
        value = getattr(args, key, None)
        if value is not None and value != "all":
            overrides[key] = value
    if getattr(args, "root", None):
        overrides["data_root"] = str(args.root)
    overrides.update(extra)
    return make_config(args.profile, yaml_files=getattr(args, "config", None) or [],
                       overrides=overrides, profile_source="--profile")


# ---------------------------------------------------------------------------------------


def cmd_synthesize(args: argparse.Namespace) -> int:
    from fmcnet.config import check_value
    from fmcnet.data import heldout, synthetic

    check_value("synthetic_identities", args.identities, flag="--identities")
    check_value("synthetic_images_per_camera", args.images_per_camera,
                flag="--images-per-camera")
    # the second renderer draws the sets of the held-out check (fmcnet.data.heldout)
    module = heldout if args.renderer == "heldout" else synthetic
    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # --overwrite replaces only a set synthesize wrote (the functions refuse the rest
        # too): the old folder is deleted.
        synthetic.refuse_to_replace(out, module.MARKER,
                                    "held-out" if module is heldout else "synthetic")
        if not args.overwrite:
            raise FMCNetError(f"{out} already holds a synthetic set; pass --overwrite to replace "
                              "it, or choose another --out")
    write = heldout.synthesize_heldout if args.renderer == "heldout" else synthetic.synthesize
    root = write(out, identities=args.identities, seed=args.seed,
                 images_per_camera=args.images_per_camera, overwrite=args.overwrite)
    print(f"synthetic VI-ReID set ({args.renderer} renderer, SYSU-MM01 layout) written to {root}")
    return 0


def cmd_dataset_info(args: argparse.Namespace) -> int:
    import warnings

    from fmcnet.data.info import dataset_info, format_dataset_info

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loader's warnings come back in info["notes"]
        info = dataset_info(args.dataset, args.root, trial=args.trial,
                            gallery_sampler=args.gallery_sampler,
                            llcm_protocol=args.llcm_protocol)
    print(json.dumps(info) if args.json else format_dataset_info(info))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from fmcnet.train import train

    if args.trial == "all":
        return _train_all_trials(args)
    cfg = _config(args)
    out = Path(args.out)
    result = train(cfg, out, resume=args.resume)
    if result.results is not None:
        _print_results(result.results)
        print(f"run folder: {out}")
    return 0


def _train_all_trials(args: argparse.Namespace) -> int:
    """RegDB: one model per trial, each tested on its own split (docs/protocols.md).

    `--resume` continues an interrupted sweep: finished trials (their results.json) are
    kept, an interrupted one resumes from its checkpoint, the rest start; the combined
    results.json is written once all of them are done.
    """
    from fmcnet.checkpoints import check_config, resume_keys
    from fmcnet.evaluation.run import aggregate_trials
    from fmcnet.run_files import RunFileError, read_config, read_results
    from fmcnet.run_folder import run_contents
    from fmcnet.train import train

    out = Path(args.out)
    if (args.dataset or _config(args).dataset) != "regdb":
        raise FMCNetError("--trial all trains one model per RegDB trial; it needs --dataset "
                          "regdb (SYSU-MM01 and LLCM have one training set)")
    configs = {t: _config(args, trial=t) for t in REGDB_TRIALS}  # all checked before training
    folders = {t: out / f"trial_{t:02d}" for t in configs}
    if not args.resume:
        started = [f.name for f in folders.values() if run_contents(f)]
        if started or (out / "results.json").exists():
            raise FMCNetError(
                f"{out} already holds a RegDB sweep ({', '.join(started) or 'results.json'}); "
                "pass --resume to continue it, or choose another --out"
            )
    per_trial = []
    for t, cfg in configs.items():
        folder = folders[t]
        finished = folder / "results.json"
        if args.resume and finished.exists():
            try:
                saved = {"config": read_config(folder)}
                results = read_results(finished)
            except RunFileError as exc:
                if exc.path == finished:
                    advice = (f"trial {t}'s results file is damaged; move it aside and run "
                              "again with --resume (the trial resumes from its last checkpoint)")
                else:  # config.yaml: the finished results cannot be checked against the sweep
                    advice = (f"trial {t} finished, but without its configuration its results "
                              "cannot be checked against this sweep's: move its config.yaml "
                              f"(if there) and {finished} aside and run again with --resume "
                              "(the trial is evaluated again from its last checkpoint, which "
                              "keeps its configuration, and both files are written again)")
                raise FMCNetError(f"{exc.path} {exc.problem}: {advice}") from None
            check_config(saved, cfg, folder / "config.yaml", resume_keys(),
                         what=f"this sweep (trial {t})")
            print(f"trial {t}: finished earlier, results kept ({finished})")
        else:
            # an interrupted trial resumes (from step 0 when it stopped before its first
            # checkpoint); one not started yet trains
            resume = args.resume and bool(run_contents(folder))
            results = train(cfg, folder, resume=resume).results
        per_trial.append({**results, "trial": t})
    summary = aggregate_trials(per_trial)
    atomic_write_json(out / "results.json", summary)
    _print_results(summary)
    print(f"sweep folder: {out} (one run folder per trial)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fmcnet.run_lock import hold_run

    if not args.run or args.out:  # written elsewhere: nothing goes into the run's folder
        return _evaluate(args)
    # `--run` without --out files the evaluation under the run: one writer at a time
    # (fmcnet.run_lock)
    with hold_run(Path(args.run), "evaluate"):
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    from fmcnet.checkpoints import load_checkpoint, load_model_from_checkpoint
    from fmcnet.data import dataset_for_config
    from fmcnet.evaluation.run import evaluate_run, evaluation_folder
    from fmcnet.run_folder import check_run_checkpoint, last_checkpoint, refuse_existing_results
    from fmcnet.utils import pick_device

    if args.run:
        run_dir = Path(args.run)
        checkpoint = last_checkpoint(run_dir)
        if not checkpoint.exists():
            raise FMCNetError(f"run {run_dir} has no checkpoint at {checkpoint}")
        base, prefix = run_dir, ""
    elif args.checkpoint:
        checkpoint = Path(args.checkpoint)
        # beside the current directory's runs/, never into the checkpoint's own folder
        owner = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" \
            else checkpoint.parent
        base, prefix = Path("runs"), f"{owner.name or 'checkpoint'}-{checkpoint.stem}_"
    else:
        raise FMCNetError("evaluate needs --run RUN_DIR or --checkpoint FILE")
    ckpt = load_checkpoint(checkpoint)
    if args.run:
        check_run_checkpoint(run_dir, ckpt, checkpoint)
    saved = ckpt["config"]
    values = {k: v for k, v in saved.items() if k != "profile"}
    if args.dataset:
        values["dataset"] = args.dataset
    if args.root:
        values["data_root"] = str(args.root)
    if args.trials is not None:
        values["trials"] = args.trials
    extra = parse_overrides(args.overrides or [])
    named = extra.pop("profile", saved["profile"])
    if named != saved["profile"]:
        raise FMCNetError(
            f"evaluate uses the profile the checkpoint was trained under ({saved['profile']!r}: "
            f"its model and data settings); drop profile={named}"
        )
    values.update(extra)
    cfg = make_config(saved["profile"], overrides=values, progress=not args.json)
    if (args.mode or args.shots) and cfg.dataset not in ("sysu", "synthetic", "heldout"):
        raise FMCNetError(
            f"--mode/--shots select SYSU-MM01 settings; {cfg.dataset} has the settings "
            "visible_to_infrared and infrared_to_visible, always evaluated together. "
            "Drop --mode/--shots"
        )
    device = pick_device(cfg.device)
    dataset = dataset_for_config(cfg)
    settings = _settings_filter(dataset, args.mode, args.shots)
    tta = cfg.tta if args.tta is None else args.tta
    rerank = cfg.rerank if args.rerank is None else args.rerank
    if args.out:
        out = Path(args.out)
    else:
        name = evaluation_folder(base, dataset, settings=settings, trials=cfg.trials, tta=tta,
                                 rerank=rerank)
        out = name.with_name(f"{prefix}{name.name}_step{ckpt['global_step']}")
    refuse_existing_results(out)
    model, _ = load_model_from_checkpoint(checkpoint, cfg, dataset, device)
    results = evaluate_run(
        model, dataset, cfg, out, device=device,
        selection=f"checkpoint {checkpoint} (epoch {ckpt['epoch']}, step {ckpt['global_step']})",
        tta=tta, rerank=rerank, settings=settings, trials=cfg.trials,
    )
    if args.json:
        print(json.dumps(results))
    else:
        _print_results(results)
        print(f"evaluation folder: {out}")
    return 0


def _settings_filter(dataset, mode: str | None, shots: int | None) -> list[str] | None:
    if mode is None and shots is None:
        return None
    names = []
    for name in dataset.splits:
        if "/" not in name:
            names.append(name)
            continue
        m, s = name.split("/")
        if (mode is None or m == mode) and (shots is None or s == ("single" if shots == 1 else "multi")):
            names.append(name)
    return names


def cmd_demo(args: argparse.Namespace) -> int:
    from fmcnet.analysis import demo_config
    from fmcnet.run_files import read_metrics
    from fmcnet.run_folder import last_checkpoint
    from fmcnet.run_lock import hold_run
    from fmcnet.train import train
    from fmcnet.viz.figures import plot_cmc, plot_training_curves, save_figure

    out = Path(args.out)
    # the same configuration the notebooks' reference run (runs/demo) is trained with
    cfg = demo_config(overrides=parse_overrides(args.overrides or []))
    t0 = time.perf_counter()
    off = [name for name in ("shs", "sps", "dc", "gan", "ic", "fc") if not getattr(cfg, name)]
    print(f"fmcnet demo: profile 'quick' ({cfg.backbone}, {cfg.height}x{cfg.width}, "
          f"{cfg.epochs} epochs{', without L_' + ', L_'.join(off) if off else ''}) on the "
          f"built-in synthetic set -> {out}")
    figures = out / "figures"
    with hold_run(out, "demo"):  # the run and its figures: one writer
        result = train(cfg, out, resume=args.resume or last_checkpoint(out).exists())
        save_figure(plot_training_curves(read_metrics(out)), figures / "training_curves.png")
        save_figure(plot_cmc(result.results), figures / "cmc.png")
    _print_results(result.results)
    print(f"done in {time.perf_counter() - t0:.0f} s; run folder {out}, figures in {figures}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from fmcnet.sweep import collect_sweep, run_sweep, summary_markdown

    overrides = parse_overrides(args.overrides or [])
    if not args.no_run:
        print(run_sweep(args.spec, profile=args.profile, out=args.out, seeds=args.seeds,
                        overrides=overrides, rows=args.rows))
    if args.report:
        from fmcnet.study import write_study

        command = " ".join(["python -m fmcnet sweep", args.spec]
                           + (["--profile", args.profile] if args.profile else [])
                           + (["--out", args.out] if args.out else [])
                           + (["--seeds", *map(str, args.seeds)] if args.seeds else [])
                           + (["--rows", *args.rows] if args.rows else [])
                           + ["--report", args.report] + list(args.overrides or []))
        paths = write_study(args.spec, args.report, profile=args.profile, out=args.out,
                            seeds=args.seeds, command=command)
        print("study written: " + ", ".join(str(p) for p in paths.values()))
    rows = collect_sweep(args.spec, profile=args.profile, out=args.out, seeds=args.seeds)
    if args.no_run and not args.report:
        print(summary_markdown(rows))
    unfinished = [f"{r['row']} ({r['status']})" for r in rows
                  if r["status"] != "done" and (not args.rows or r["row"] in args.rows)]
    if unfinished and not args.no_run:
        print(f"error: {len(unfinished)} of {len(rows)} rows have no result: "
              f"{', '.join(unfinished)}; see the status column above", file=sys.stderr)
        return 1
    return 0


def cmd_gpu_check(args: argparse.Namespace) -> int:
    import math

    if not (math.isfinite(args.budget_s) and args.budget_s > 0):
        why = ("with no time left every section would be skipped and nothing checked"
               if args.budget_s <= 0 else "a budget is a finite number of seconds")
        raise FMCNetError(
            f"--budget-s must be a positive number of seconds (the time all sections share; "
            f"default 400), got {args.budget_s:g}: {why}"
        )
    # The benchmarks live outside the package they measure (fmcnet_bench, beside fmcnet in
    # the checkout); only this command reaches for them, and only when it runs.
    try:
        from fmcnet_bench.check import failed_sections, run_check
        from fmcnet_bench.report import summary_table
    except ModuleNotFoundError as exc:
        if exc.name != "fmcnet_bench":
            raise
        raise FMCNetError(
            "gpu-check lives in the fmcnet_bench package beside fmcnet in the checkout, and "
            "python cannot find it; run python -m fmcnet gpu-check from the checkout's root "
            "(or install the checkout: pip install -e .)") from None

    result = run_check(args.out, device=args.device, tiny=args.tiny, budget_s=args.budget_s,
                       sections=args.sections.split(",") if args.sections else None,
                       seed=args.seed, compile=not args.no_compile)
    print(summary_table(result))
    print(f"gpu-check ({result['mode']}, {result['wall_s']} s): {args.out}/gpu-check.json "
          f"and gpu-check.md")
    failed = failed_sections(result)
    if failed:
        print(f"error: gpu-check section(s) failed: {', '.join(failed)} (see gpu-check.json)",
              file=sys.stderr)
        return 1
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    import dataclasses

    from fmcnet.pretrain import PretrainRecipe, pretrain

    base = PretrainRecipe.smoke() if args.smoke else PretrainRecipe()
    fields = {f.name for f in dataclasses.fields(PretrainRecipe)}
    changes = {}
    for key, value in parse_overrides(args.overrides or []).items():
        if key not in fields:
            raise FMCNetError(f"unknown pretrain key {key!r}; valid keys: {', '.join(sorted(fields))}")
        kind = type(getattr(base, key))
        try:
            changes[key] = kind(float(value)) if kind is int else kind(value)
        except ValueError:
            raise FMCNetError(f"pretrain key {key} expects a {kind.__name__}, got {value!r}") from None
    recipe = dataclasses.replace(base, **changes)
    command = " ".join(["python -m fmcnet pretrain", "--out", str(args.out)]
                       + (["--smoke"] if args.smoke else []) + list(args.overrides or []))
    pretrain(recipe, args.out, command=command)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from fmcnet.analysis import make_figures, reference_run

    # empty --run: the reference run (runs/demo), trained with the demo's configuration
    # when missing; a named run is taken as it was trained
    run = reference_run("quick", run_dir=args.run or "")
    for w in make_figures(run, args.out, ablations=args.ablations or None):
        print(f"{w.name:18s} {w.path}" if w.path else f"{w.name:18s} -- {w.note}")
    return 0


def _print_results(results: dict[str, Any]) -> None:
    from fmcnet.evaluation.report import table1_markdown

    print(table1_markdown(results))


# ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fmcnet", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synthesize", help="write the synthetic VI-ReID set (SYSU-MM01 layout)")
    p.add_argument("--out", required=True)
    p.add_argument("--identities", type=int, default=Config.synthetic_identities)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images-per-camera", type=int, default=Config.synthetic_images_per_camera)
    p.add_argument("--overwrite", action="store_true",
                   help="replace the synthetic set already in --out (only a set synthesize "
                        "wrote: a folder holding anything else is refused)")
    p.add_argument("--renderer", choices=("builtin", "heldout"), default="builtin",
                   help="builtin: fmcnet.data.synthetic; heldout: fmcnet.data.heldout, another "
                        "renderer (160/20/40 train/val/test ids of 220)")
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("dataset-info", help="summarise a dataset copy against the official counts")
    p.add_argument("dataset", choices=("sysu", "regdb", "llcm"))
    p.add_argument("--root", required=True)
    p.add_argument("--trial", type=int, default=None)
    p.add_argument("--gallery-sampler", choices=("auto", "owners", "agw", "seeded"),
                   default="auto", help="SYSU-MM01 gallery draws (docs/datasets.md)")
    p.add_argument("--llcm-protocol", choices=("deen", "literal"), default="deen",
                   help="LLCM evaluation rules (docs/datasets.md)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_info)

    p = sub.add_parser("train", help="train, then evaluate and write results.json")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="default: the config's dataset (synthetic)")
    p.add_argument("--root", default=None)
    p.add_argument("--trial", default=None, help="RegDB trial 1..10, or 'all'")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="default: the profile a --config file names, else paper")
    p.add_argument("--config", action="append", help="YAML file(s) of overrides")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("overrides", nargs="*", help="key=value configuration overrides")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a run or a checkpoint")
    p.add_argument("--run", default=None)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--out", default=None,
                   help="folder for this evaluation (default: <run>/evaluations/<settings>)")
    p.add_argument("--dataset", choices=DATASETS, default=None)
    p.add_argument("--root", default=None)
    p.add_argument("--mode", choices=("all", "indoor"), default=None)
    p.add_argument("--shots", type=int, choices=(1, 10), default=None)
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--tta", action="store_true", default=None)
    p.add_argument("--rerank", action="store_true", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="the CPU demo on the synthetic set (make demo)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--resume", action="store_true")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sweep", help="run a notebook sweep (e.g. the ablation rows)")
    p.add_argument("spec")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="training seeds of every row (default: the spec's)")
    p.add_argument("--rows", nargs="+", default=None, metavar="ROW",
                   help="train only these rows (the others are collected as they are)")
    p.add_argument("--report", default=None, metavar="PREFIX",
                   help="write the study document PREFIX.md, .json and .png (fmcnet.study)")
    p.add_argument("--no-run", action="store_true",
                   help="train nothing: collect what exists (with --report: rewrite the document)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("gpu-check", help="prove and measure the GPU path in one call "
                       "(make gpu-check); --device cpu --tiny is the dry run")
    p.add_argument("--out", required=True, help="folder for gpu-check.json and gpu-check.md")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--tiny", action="store_true",
                   help="toy shapes, every code path (about a minute on a CPU); numbers meaningless")
    p.add_argument("--budget-s", type=float, default=400.0,
                   help="seconds for all sections; a section that would not fit is skipped "
                        "and reported (default 400, within the 8-minute goal)")
    p.add_argument("--sections", default=None,
                   help="comma-separated subset of: matmul,step,data,run,extraction,"
                        "protocol,compile")
    p.add_argument("--no-compile", action="store_true", help="leave out torch.compile")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gpu_check)

    p = sub.add_parser("pretrain", help="the ImageNet stand-in: pretrain the quick backbone on "
                       "visible images of another synthetic population (make pretrain)")
    p.add_argument("--out", required=True, help="the state dict to write (.pt); .json and .log beside it")
    p.add_argument("--smoke", action="store_true", help="a seconds-long recipe (tests)")
    p.add_argument("overrides", nargs="*", help="recipe key=value (fmcnet.pretrain.PretrainRecipe)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("figures", help="the README's pictures from the reference run (make figures)")
    p.add_argument("--run", default=None,
                   help="a run folder; default: the reference run runs/demo, trained when missing")
    p.add_argument("--out", default="figures")
    p.add_argument("--ablations", default="results/synthetic_ablations.json",
                   help="the synthetic-set ablation study (skipped with a message when missing)")
    p.set_defaults(func=cmd_figures)
    return parser


def os_error_message(exc: OSError) -> str:
    """An `OSError` the code did not explain itself, as one line with true advice."""
    import errno

    where = f" ({exc.filename})" if exc.filename else " (the system did not name the file)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"{exc.strerror or exc}{where}: the disk (or your quota) is full; free space, or "
                "write elsewhere (--out for runs, FMCNET_DATA for data and caches), and run again")
    if exc.errno == errno.EROFS:
        return (f"{exc.strerror or exc}{where}; write elsewhere (--out for runs, FMCNET_DATA for "
                "data and caches)")
    return (f"{exc.strerror or exc}{where}; check that it exists and that you may read (and, "
            "for outputs and caches, write) it")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "trial", None) not in (None, "all") and isinstance(args.trial, str):
        try:
            args.trial = int(args.trial)
        except ValueError:
            print(f"error: --trial expects 1..10 or 'all', got {args.trial!r}", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except FMCNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # unreadable folders, read-only or full disks: one line, no traceback
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
