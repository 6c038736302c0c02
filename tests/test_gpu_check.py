"""The GPU acceptance check (`python -m fmcnet gpu-check`) and what it relies on.

The whole check runs once here as its CPU dry run (`--device cpu --tiny`), through
`python -m fmcnet`, with jupyter, ipywidgets, papermill, nbval and umap made
unimportable: the GPU box has none of them, and that run is the one chance to catch a
path that fails there. The other tests check the budget, error reporting, goals and
the pieces the check builds its data and verdicts from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from fmcnet.cli import main as cli_main
from fmcnet.config import make_config
from fmcnet.utils import FMCNetError
from fmcnet_bench import check, plan, report, sysu, trainer
from fmcnet_bench.sections import data as data_section

ROOT = Path(__file__).resolve().parents[1]
ABSENT_ON_GPU_BOX = ("jupyter", "jupyterlab", "ipywidgets", "papermill", "nbval", "umap",
                     "IPython", "ipykernel", "nbformat", "pytest")

# Makes the packages above unimportable, records OMP_WAIT_POLICY at the moment torch is
# first imported, then runs the given module as __main__ (what `python -m` does).
BLOCKER = textwrap.dedent("""
    import importlib.abc, os, runpy, sys
    BLOCKED = set(sys.argv[1].split(","))
    seen = {}
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            top = name.split(".")[0]
            if top in BLOCKED:
                raise ImportError(f"{top} is blocked (absent on the GPU box)")
            if top == "torch" and "policy" not in seen:
                seen["policy"] = os.environ.get("OMP_WAIT_POLICY")
            return None
    sys.meta_path.insert(0, Blocker())
    module, sys.argv = sys.argv[2], [sys.argv[2]] + sys.argv[3:]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    print("POLICY_AT_TORCH_IMPORT=" + str(seen.get("policy")), file=sys.stderr)
    sys.exit(code)
""")


def _run_blocked(module: str, *args: str, env: dict | None = None, pythonpath=(),
                 timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m module args` with the notebook packages blocked and OMP_WAIT_POLICY
    unset unless `env` sets it."""
    full = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    full.update(env or {})
    full["PYTHONPATH"] = os.pathsep.join([str(ROOT), *map(str, pythonpath)])
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(ABSENT_ON_GPU_BOX), module, *args],
        cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """`python -m fmcnet gpu-check --device cpu --tiny` once, notebook packages blocked."""
    out = tmp_path_factory.mktemp("gpu-check")
    proc = _run_blocked("fmcnet", "gpu-check", "--device", "cpu", "--tiny", "--out", str(out),
                        timeout=1200)
    return proc, out


def test_dry_run_passes_every_section(dry_run):
    proc, out = dry_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((out / "gpu-check.json").read_text())
    assert result["mode"] == "tiny dry run"
    assert list(result["sections"]) == list(plan.SECTIONS)
    for name, section in result["sections"].items():
        assert section["status"] == "ok", (name, section)
    # The summary table goes to stdout; the markdown report holds every section.
    assert "| section run | ok" in proc.stdout
    md = (out / "gpu-check.md").read_text()
    for name in plan.SECTIONS:
        assert f"## {name}" in md


def test_dry_run_measures_what_the_gpu_run_reports(dry_run):
    _, out = dry_run
    s = json.loads((out / "gpu-check.json").read_text())["sections"]
    assert s["matmul"]["bf16_tflops"] > 0
    variants = s["step"]["variants"]
    assert set(variants) == {"fp32", "bf16", "bf16_channels_last"}
    for row in variants.values():
        assert row["images_per_s"] > 0 and row["mfu"] > 0
    assert s["step"]["flops_per_step"] > 1e8
    assert 0 < s["step"]["augmentation"]["share_of_step"] < 1
    assert set(s["step"]["phases_ms"]) == {"data", "forward", "backward", "optimizer"}
    assert s["step"]["data_location"]["device_images_per_s"] > 0
    # The SYSU-sized set in miniature: every image rendered and resized.
    assert (s["data"]["visible"], s["data"]["infrared"]) == (48, 30)
    assert s["data"]["resized_to"] == [32, 16]
    run = s["run"]
    assert run["all_finite"] and run["steps"] == plan.TINY_PLAN.run_steps
    assert "bf16 autocast on" in run["config"]  # cpu_amp: the dry run takes the bf16 path
    assert {"id", "total", "gan_d", "disc_acc"} <= set(run["terms"])
    assert 0 <= run["disc_acc"]["last"] <= 1
    gap = run["precision_gap"]
    assert len(gap["total_bf16"]) == len(gap["total_fp32"]) == plan.TINY_PLAN.gap_steps
    assert gap["fp32_vs_fp32_repeat"]["max_rel"] == 0  # CPU fp32 is deterministic
    assert gap["bf16_vs_fp32"]["max_rel"] > 0  # bf16 did change the numbers
    assert s["extraction"]["bf16"]["images_per_s"] > 0 and s["extraction"]["fp32"]["seconds"] > 0
    protocol = s["protocol"]
    assert set(protocol["mAP_by_setting"]) == {"all/single", "all/multi", "indoor/single",
                                                "indoor/multi"}
    assert all(0 < v < 1 for v in protocol["mAP_by_setting"].values())
    assert protocol["cpu_baseline"]["max_mAP_diff"] == 0
    assert protocol["rerank"]["all/multi"]["gallery"] > protocol["rerank"]["all/single"]["gallery"]
    assert s["compile"]["backend"] == "aot_eager" and s["compile"]["compile_s"] > 0
    est = json.loads((out / "gpu-check.json").read_text())["estimate"]
    assert est["total_min"] > 0 and est["steps"] == 80 * est["steps_per_epoch"]


def test_dry_run_sets_the_wait_policy_before_torch(dry_run):
    proc, out = dry_run
    env = json.loads((out / "gpu-check.json").read_text())["environment"]
    assert env["omp_wait_policy"] == "PASSIVE"
    assert "POLICY_AT_TORCH_IMPORT=PASSIVE" in proc.stderr


def test_a_users_wait_policy_is_kept():
    proc = _run_blocked("fmcnet", "--help", env={"OMP_WAIT_POLICY": "ACTIVE"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "gpu-check" in proc.stdout
    assert "POLICY_AT_TORCH_IMPORT=ACTIVE" in proc.stderr


def test_core_modules_import_without_notebook_packages(tmp_path):
    (tmp_path / "import_check.py").write_text(textwrap.dedent("""
        import importlib, sys
        import fmcnet
        assert "torch" not in sys.modules, "import fmcnet must not import torch"
        for name in ("fmcnet.config", "fmcnet.data", "fmcnet.data.synthetic",
                     "fmcnet.data.cache", "fmcnet.data.augment", "fmcnet.data.sampler",
                     "fmcnet.model", "fmcnet.losses", "fmcnet.train", "fmcnet.evaluation",
                     "fmcnet.evaluation.extract", "fmcnet.evaluation.protocols",
                     "fmcnet.evaluation.rerank", "fmcnet.evaluation.run", "fmcnet.cli",
                     "fmcnet.assembly", "fmcnet.checkpoints", "fmcnet.run_folder",
                     "fmcnet.data.render", "fmcnet_bench.check", "fmcnet_bench.report",
                     "fmcnet.analysis", "fmcnet.sweep", "fmcnet.study", "fmcnet.stats",
                     "fmcnet.viz", "fmcnet.viz.figures", "fmcnet.viz.embedding"):
            importlib.import_module(name)
        print("imported")
    """))
    proc = _run_blocked("import_check", pythonpath=[tmp_path])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "imported" in proc.stdout


def test_budget_skips_and_says_so(tmp_path):
    # a nanosecond is spent before the first section starts
    result = check.run_check(tmp_path, device="cpu", tiny=True, budget_s=1e-9,
                             sections=["matmul", "protocol"], log=lambda m: None)
    for name in ("matmul", "protocol"):
        assert result["sections"][name]["status"] == "skipped"
        assert "budget" in result["sections"][name]["reason"]
    saved = json.loads((tmp_path / "gpu-check.json").read_text())
    assert saved["sections"]["matmul"]["status"] == "skipped"


@pytest.mark.parametrize("budget", [-1, 0, float("nan"), float("inf")])
def test_a_budget_that_checks_nothing_is_refused_from_python_too(tmp_path, budget):
    """`gpu-check --budget-s -1` skipped every section and exited 0; the command line
    refuses it, and so does `run_check` called from Python, before any section."""
    with pytest.raises(FMCNetError, match=r"budget_s must be a positive, finite number of "
                                          r"seconds .* every section would be skipped"):
        check.run_check(tmp_path / "out", device="cpu", tiny=True, budget_s=budget,
                        log=lambda m: None)
    assert not (tmp_path / "out").exists()


def test_a_failing_section_is_reported_and_the_rest_still_runs(tmp_path, monkeypatch, capsys):
    def broken(ctx):
        raise RuntimeError("no kernel for this op")

    monkeypatch.setitem(check.SECTION_FUNCS, "matmul", broken)
    code = cli_main(["gpu-check", "--device", "cpu", "--tiny", "--out", str(tmp_path),
                     "--sections", "matmul,protocol"])
    assert code == 1
    err = capsys.readouterr().err
    assert "section(s) failed: matmul" in err
    result = json.loads((tmp_path / "gpu-check.json").read_text())
    assert result["sections"]["matmul"]["status"] == "error"
    assert "no kernel for this op" in result["sections"]["matmul"]["error"]
    assert result["sections"]["protocol"]["status"] == "ok"


def test_full_check_needs_a_gpu(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert cli_main(["gpu-check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--device cpu --tiny" in err
    with pytest.raises(FMCNetError, match="unknown gpu-check section"):
        check.run_check(tmp_path, device="cpu", tiny=True, sections=["nope"])


def test_goals_are_judged_against_the_measurements():
    result = {"sections": {
        "step": {"variants": {"bf16_channels_last": {"images_per_s": 2000.0, "mfu": 0.1}}},
        "compile": {"images_per_s": 2600.0, "mfu": 0.16},
        "extraction": {"bf16": {"images_per_s": 9000.0}},
        "protocol": {"seconds": 0.8},
    }, "estimate": {"total_min": 35.0, "total_min_with_compile": 29.0}}
    g = report.goals(result)
    training = g["training images/s (bf16, best of eager / compiled)"]
    assert training["value"] == 2600.0 and training["met"] is True
    assert g["MFU (vs measured bf16 matmul)"]["met"] is True
    assert g["extraction images/s (bf16, 288x144)"]["met"] is False
    assert g["SYSU protocol from features (s)"]["met"] is True
    assert g["80-epoch SYSU run estimate (min)"] == {"value": 29.0, "goal": "<= 30",
                                                       "met": True}
    assert report.goals({"sections": {}})["MFU (vs measured bf16 matmul)"]["met"] is None


def test_sysu_sized_lists_have_the_official_counts():
    cam_v, id_v, cam_i, id_i = sysu.sysu_sized_lists(395, 22258, 11909, seed=0)
    assert (len(id_v), len(id_i)) == (22258, 11909)
    assert set(np.unique(cam_v)) == {1, 2, 4, 5} and set(np.unique(cam_i)) == {3, 6}
    assert set(np.unique(id_v)) == set(np.unique(id_i)) == set(range(395))
    counts = np.bincount(id_v)
    assert counts.max() - counts.min() <= 1  # spread evenly


def test_resize_uint8_is_a_bilinear_resize():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 8, 4, 3), dtype=np.uint8)
    out = data_section.resize_uint8(images, (16, 8), torch.device("cpu"), chunk=2)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2).float(), size=(16, 8), mode="bilinear",
        align_corners=False).round().permute(0, 2, 3, 1).numpy()
    assert out.dtype == np.uint8 and out.shape == (5, 16, 8, 3)
    np.testing.assert_array_equal(out, ref.astype(np.uint8))


def test_run_steps_stops_at_the_first_non_finite_term():
    cfg = make_config("smoke", progress=False)
    param = torch.nn.Parameter(torch.zeros(1))

    class FakeTrainer:
        def __init__(self):
            self.cfg, self.calls = cfg, 0
            self.sampler = range(4)
            self.optimizer = torch.optim.SGD([{"params": [param], "lr_mult": 1.0}], lr=0.1)
            self.disc_optimizer = torch.optim.SGD([{"params": [param], "lr_mult": 1.0}],
                                                  lr=0.1)

        def __call__(self):
            self.calls += 1
            bad = float("nan") if self.calls == 3 else 1.0
            return {"total": torch.tensor(1.0), "fc": torch.tensor(bad)}

    with pytest.raises(FMCNetError, match=r"'fc' became nan at step 3"):
        trainer.run_steps(FakeTrainer(), 5, log_every=2)
    names, values = trainer.run_steps(_Finite(cfg, param), 3, log_every=2)
    assert names == ["total"] and values.shape == (3, 1)


class _Finite:
    def __init__(self, cfg, param):
        self.cfg, self.sampler = cfg, range(4)
        self.optimizer = torch.optim.SGD([{"params": [param], "lr_mult": 1.0}], lr=0.1)
        self.disc_optimizer = self.optimizer

    def __call__(self):
        return {"total": torch.tensor(2.0)}


def test_cpu_amp_runs_step_and_extraction_in_bf16():
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.model import FMCNet
    from fmcnet.optim import build_optimizers
    from fmcnet.step import TrainStep

    cfg = make_config("smoke", progress=False, pretrained=False, cpu_amp=True)
    model = FMCNet.from_config(cfg, 4)
    step = TrainStep(model, cfg, *build_optimizers(model, cfg), device=torch.device("cpu"))
    assert step.autocast_enabled
    with step.autocast():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    off = TrainStep(model, make_config("smoke", pretrained=False), *build_optimizers(model, cfg),
                    device=torch.device("cpu"))
    assert not off.autocast_enabled
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 16, 3), dtype=np.uint8)
    fp32 = extract_features(model, images, "visible", device="cpu")
    bf16 = extract_features(model, images, "visible", device="cpu", amp=True, cpu_amp=True)
    assert torch.equal(fp32, extract_features(model, images, "visible", device="cpu", amp=True))
    assert not torch.equal(fp32, bf16)  # bf16 rounding changed the features ...
    assert torch.nn.functional.cosine_similarity(fp32, bf16).min() > 0.98  # ... slightly


def test_the_core_never_imports_the_benchmarks():
    """fmcnet_bench depends on fmcnet, never the reverse: the one import of it in the
    package is the gpu-check command's, made when that command runs."""
    import ast

    found = []
    for path in sorted((ROOT / "fmcnet").rglob("*.py")):
        tree = ast.parse(path.read_text())
        owner = {child: node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                 for child in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                    a.name for a in node.names]
                if any(n.split(".")[0] == "fmcnet_bench" for n in names):
                    found.append((path.relative_to(ROOT).as_posix(),
                                  owner.get(node, "module level")))
    assert set(found) == {("fmcnet/cli.py", "cmd_gpu_check")}, found
