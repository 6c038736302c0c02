"""What the second core buys the demo: two data-parallel ranks, or two threads.

The `quick` profile's real training parts (`fmcnet.assembly`: the model, both optimizers,
the sampler, the batches and `TrainStep`, as `train()` builds them) on random images, in
three layouts:

* ``1x1`` -- one rank, one torch thread (the demo as it was);
* ``1x2`` -- one rank, two threads (OMP_WAIT_POLICY=PASSIVE, as `python -m fmcnet` sets);
* ``2x1`` -- two ranks of one thread each (`cpu_ranks=2`: gloo, each rank its own P x K
  batch, the gradients averaged as `train()` averages them),

each on the machine as it is ("idle") and beside competing CPU-bound processes that this
script starts and stops ("loaded"). It reports training images per second (both
modalities, every rank) and each layout's ratio to ``1x1`` in the same condition, from
interleaved rounds.

    python bench/cpu_ranks.py [--quick] [--tiny] [--json] [--load N]
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from common import (
    Competitors,
    cpu_environment,
    cpu_model,
    finish,
    log,
    median,
    run_worker_process,
    worker_parser,
)

LAYOUTS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}


def _rank(rank: int, world: int, port: int, spec: dict[str, Any], out: Any) -> None:
    import numpy as np
    import torch
    import torch.distributed as dist

    from fmcnet.assembly import TrainingImages, assemble
    from fmcnet.batches import DeviceImages
    from fmcnet.config import make_config

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world,
                                init_method=f"tcp://127.0.0.1:{port}")
    cfg = make_config("quick", pretrained=False, progress=False, device="cpu",
                      **spec.get("overrides", {}))
    ids, per_id = 4 * cfg.num_identities, 2 * cfg.num_instances
    rng = np.random.default_rng(rank)
    labels = np.repeat(np.arange(ids), per_id)
    device = torch.device("cpu")
    arrays = [rng.integers(0, 256, (len(labels), cfg.height, cfg.width, 3), dtype=np.uint8)
              for _ in range(2)]
    images = TrainingImages(*(DeviceImages(a, device) for a in arrays), labels, labels.copy())
    parts = assemble(cfg, images, ids, device, rank=rank, world=world)
    epoch, batches = 0, iter(parts.sampler)

    def step() -> None:
        nonlocal epoch, batches
        try:
            idx_v, idx_i = next(batches)
        except StopIteration:
            epoch += 1
            parts.sampler.set_epoch(epoch)
            batches = iter(parts.sampler)
            idx_v, idx_i = next(batches)
        parts.step(*parts.batches(idx_v, idx_i))

    for _ in range(spec["warmup"]):
        step()
    if world > 1:
        dist.barrier()
    start = time.perf_counter()
    for _ in range(spec["steps"]):
        step()
    if world > 1:
        dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        images_per_step = world * 2 * cfg.num_identities * cfg.num_instances
        out.put({"step_s": seconds / spec["steps"],
                 "images_per_s": images_per_step * spec["steps"] / seconds})
    if world > 1:
        dist.destroy_process_group()


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One layout in fresh processes (the OpenMP wait policy is read once per process)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [context.Process(target=_rank, args=(r, spec["ranks"], port, spec, queue))
             for r in range(spec["ranks"])]
    for p in procs:
        p.start()
    result = queue.get(timeout=1800)
    for p in procs:
        p.join()
    return result


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    return run_worker_process(__file__, spec, "PASSIVE")  # as `python -m fmcnet` sets it


def main() -> None:
    p = worker_parser(__doc__.split("\n\n")[0],
                      "competing CPU-bound processes in the loaded condition (default 1)")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "cpu_ranks", **cpu_environment()}
    result["cpu"] = cpu_model()
    rounds = args.repeats or (1 if args.tiny else (2 if args.quick else 3))
    steps = args.steps or (2 if args.tiny else (20 if args.quick else 40))
    small = {"num_identities": 2, "num_instances": 2, "height": 32, "width": 16} if args.tiny else {}
    result["setting"] = (f"quick profile training parts, random images, {steps} timed steps "
                         f"after 3 warm-up, {rounds} interleaved round(s); loaded: beside "
                         f"{args.load} busy process(es)")
    runs: dict[str, dict[str, list[dict]]] = {c: {k: [] for k in LAYOUTS}
                                              for c in ("idle", "loaded")}
    for r in range(rounds):
        for condition in ("idle", "loaded"):
            names = list(LAYOUTS) if r % 2 == 0 else list(LAYOUTS)[::-1]
            for name in names:
                ranks, threads = LAYOUTS[name]
                log(f"  round {r + 1}, {condition}: {name}")
                with Competitors(args.load if condition == "loaded" else 0):
                    runs[condition][name].append(run_worker(
                        {"ranks": ranks, "threads": threads, "steps": steps,
                         "warmup": 1 if args.tiny else 3, "overrides": small}))
    for condition, rows in runs.items():
        rate = {k: median([x["images_per_s"] for x in v]) for k, v in rows.items()}
        result[condition] = {k: {"images_per_s": round(v, 1),
                                 "step_ms": round(1e3 * median([x["step_s"] for x in rows[k]]), 1),
                                 "vs_1x1": round(v / rate["1x1"], 3)} for k, v in rate.items()}
        for k in ("1x2", "2x1"):
            result[f"{k}_vs_1x1_{condition}_ratio"] = result[condition][k]["vs_1x1"]
    finish(result, args, started)



if __name__ == "__main__":
    main()
