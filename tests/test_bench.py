"""The benchmark scripts run: `--quick --json --tiny` prints one JSON object with ratios.

Toy sizes (`--tiny`), so the numbers mean nothing here; what is checked is that each
script's whole path runs (and, for eval_speed, that rank_metrics still equals the
per-query loops: the script raises otherwise) and that its output keeps its shape.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("train_throughput", "eval_speed", "data_pipeline", "demo_step", "browser_speed",
           "cpu_ranks")


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_quick_json(script):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # One intra-op thread: on a shared 2-core machine, two OpenMP threads wait on each
    # other behind other processes and the tiny run takes ~10x longer.
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{script}.py"), "--quick", "--json", "--tiny",
         "--device", "cpu", "--threads", "1"],
        # demo_step and cpu_ranks start many worker processes (and competing busy loops):
        # minutes on a loaded 2-core machine
        cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=900 if script in ("demo_step", "cpu_ranks") else 240,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stderr[-4000:]}"
    result = json.loads(proc.stdout)  # exactly one JSON object: extra text fails here
    assert isinstance(result, dict)
    assert result["benchmark"] == script
    for key in ("device", "commit", "date", "load_avg_start", "load_avg_end", "wall_s"):
        assert key in result, key
    ratios = {k: v for k, v in result.items() if k.endswith("_ratio")}
    assert ratios, f"{script} reported no *_ratio keys: {sorted(result)}"
    for key, value in ratios.items():
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (key, value)
