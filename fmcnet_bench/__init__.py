"""Benchmarks of fmcnet, outside the package they measure: the GPU acceptance check and the
tools the `bench/` scripts share. It depends on `fmcnet`, never the reverse (the one link
back is `python -m fmcnet gpu-check`, which imports `fmcnet_bench.check` when it runs).

    check.py     run_check: the sections in order within a time budget, the report after each
    plan.py      the GPU and CPU dry-run plans, the goals, each section's configuration
    sections/    one module per section (below)
    report.py    environment, the 80-epoch estimate, the goals judged, gpu-check.md
    trainer.py   Trainer: a run's parts from `fmcnet.assembly.assemble` on given images
    timing.py    device syncs, significant figures, phase clocks, peak memory
    flops.py     FLOPs of a step (meta tensors); data-sheet bf16 peaks
    sysu.py      SYSU-MM01's counts; its protocol on random identity-structured features

Found from the checkout's root without installing anything (`python -m fmcnet` puts the
working directory on `sys.path`; `bench/common.py` adds the root for the scripts), and
installed with fmcnet (pyproject's `include = ["fmcnet*"]` takes it along).

The GPU acceptance check: one call that proves the GPU path and measures it.

``make gpu-check`` / ``python -m fmcnet gpu-check --out DIR`` on a bare GPU machine (its
own python3 with torch; no venv, nothing installed, nothing downloaded). Sections, each
measured against a baseline in the same run where one exists:

* ``matmul``     -- the card's own bf16 rate on a large square product (the MFU denominator);
* ``step``       -- the real training step (`fmcnet.step.TrainStep` fed by `OnDeviceBatches`)
  at the paper shape: images/s, peak memory and MFU for fp32, bf16 and bf16 +
  channels_last; cuDNN autotuning off vs on; images on the device vs host-pinned; the
  augmentation's share of a step and the phase breakdown;
* ``data``       -- a SYSU-MM01-sized synthetic training set (395 identities, 22,258 visible +
  11,909 infrared images) rendered in memory and resized on the device;
* ``run``        -- 200+ steps of the ``paper`` profile on it from random init (every loss
  finite, MD hinge activity, D accuracy) and the same 20 steps in bf16 and fp32 from one
  seed (loss gap, with an fp32 repeat as the noise floor);
* ``extraction`` -- `extract_features` at 288x144, bf16 vs fp32;
* ``protocol``   -- the SYSU-MM01 protocol (4 settings x 10 trials) from features on the
  device vs the CPU, and k-reciprocal re-ranking at SYSU-MM01 size;
* ``compile``    -- the step under `torch.compile`, compile time counted (last: a compiler
  failure cannot cost the other sections);
* ``estimate``   -- the 80-epoch SYSU-MM01 paper run's wall time from the measured rates.

A time budget (default 400 s) skips a section that would not fit, and says so, rather
than overrunning; ``gpu-check.json`` and ``gpu-check.md`` are rewritten after every
section, so a run cut short keeps what it measured. ``--device cpu --tiny`` runs the same
functions on toy shapes in about a minute of CPU time (`make test` does), so the GPU run cannot
fail on a path never executed; torch.compile then uses the ``aot_eager`` backend (graph
capture and AOT autograd without code generation).
"""
