"""The GPU check's sections, one module each (`fmcnet_bench.check` runs them in order).

Each section is a function `section_<name>(ctx: Check) -> dict` that measures one thing,
against a baseline in the same run where one exists, and leaves what later sections need
on `ctx` (the matmul rate, the step's FLOPs and time, the trained model, ...).
"""
