"""A sweep spec: its rows, seeds, comparisons and headings, read and checked.

A sweep spec (YAML, e.g. `configs/sweeps/ablations.yaml`):

```yaml
notebook: notebooks/04_train_model.ipynb   # executed once per row (runner: notebook)
runner: notebook                           # notebook (papermill) | train (python -m fmcnet train)
out: runs/sweep-ablations                  # runs/<sweep>/<row>/ per row, summary.md
profile: quick                             # default profile (run_sweep(profile=...) wins)
setting: all/single                        # the results.json setting the table reports
seeds: [0, 1]                              # training seeds of every row (optional)
parameters: {}                             # extra papermill parameters for every row
overrides: {}                              # configuration overrides for every row
headings: {readings: Readings ...}         # a heading per row group that is no paper table
comparisons:                               # the study document's verdicts (fmcnet.study)
  - {better: t2_full, worse: t2_base, what: the full model over Base}
  - {better: r_x, worse: t2_full, what: a reading, ids: val}      # on the val ids
  - {better: "t2_full:fused", worse: "t2_full:shared", what: F_fp over F_sh, paired: true}
rows:
  t2_base:
    config: configs/ablations/t2_base.yaml # YAML stacked on the profile (optional)
    overrides: {}                          # row overrides (optional)
    seeds: [0, 1, 2]                       # this row's seeds (optional; beats the spec's)
    table: 2                               # grouping for the table and the bar chart
    label: Base
    paper: {R1: 57.09, mAP: 53.11}
  t4_no_fmc:
    same_as: t2_base_sfd                   # the same model: reuse that row's result
```

`load_spec` refuses, naming the spec and the key, what cannot run: an unknown key, a row
named twice (or any key twice), a missing config or notebook, `profile` among the
overrides, seeds that are not distinct integers, a comparison naming a row the spec does
not have. `fmcnet.sweep` runs a spec and collects its rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fmcnet.config import DuplicateKeyError, load_unique_yaml
from fmcnet.utils import FMCNetError


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
    seeds: list[int] | None = None


@dataclass(frozen=True)
class Comparison:
    """Row `better` against row `worse`: `what` the difference measures (the study
    document's words). `ids`: "test" (the spec's `setting`) or "val" (the held-out
    validation ids' setting, where choices are made). A side written `row:feature` is one
    feature's retrieval in that row (results.json `features`, test ids); `paired`
    compares the seeds pairwise (a paired t-test) instead of as two samples (Welch)."""

    better: str
    worse: str
    what: str
    ids: str = "test"
    paired: bool = False


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
    seeds: list[int] | None = None
    runner: str = "notebook"
    # row group (a row's `table`) -> heading, for the groups that are not a paper table
    headings: dict[str, str] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)


_SPEC_KEYS = {"notebook", "out", "profile", "setting", "parameters", "overrides", "rows",
              "seeds", "runner", "headings", "comparisons"}
_ROW_KEYS = {"config", "overrides", "parameters", "table", "label", "paper", "same_as", "seeds"}
RUNNERS = ("notebook", "train")


def seed_list(value: Any, where: str) -> list[int] | None:
    """`seeds` from a spec or the command line: None, or a non-empty list of distinct ints."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or len(set(value)) != len(value)):
        raise SweepError(f"{where}: seeds must be a non-empty list of distinct integers, "
                         f"got {value!r}")
    return [int(v) for v in value]


def resolve(path: str | os.PathLike) -> Path:
    from fmcnet.analysis import repo_path

    return repo_path(path)


def _mapping(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise SweepError(f"sweep spec {where}: `{key}` must be a mapping of key: value, got "
                         f"{value!r}")
    if key == "overrides" and "profile" in value:
        raise SweepError(f"sweep spec {where}: `overrides` names profile={value['profile']}; a "
                         "sweep has one profile, the spec's `profile` key (or --profile): set "
                         "it there")
    return dict(value)


def load_spec(spec_path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep spec; relative paths are relative to the checkout."""
    path = resolve(spec_path)
    if not path.is_file():
        raise SweepError(f"sweep spec {path} does not exist")
    try:
        data = load_unique_yaml(path.read_text()) or {}
    except DuplicateKeyError as exc:  # two rows of one name would run once
        raise SweepError(exc.explain(f"sweep spec {path}", ", so two rows of one name would "
                                                          "run once")) from None
    except yaml.YAMLError as exc:
        raise SweepError(f"sweep spec {path} is not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"sweep spec {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise SweepError(f"sweep spec {path} must be a mapping with notebook, out and rows")
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise SweepError(f"sweep spec {path}: unknown key(s) {sorted(unknown)}; "
                         f"valid: {sorted(_SPEC_KEYS)}")
    required = ("rows",) if data.get("runner") == "train" else ("notebook", "rows")
    for key in required:
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
            seeds=seed_list(row.get("seeds"), f"sweep spec {path}, row {name!r}"),
        )
    for row in rows.values():
        if row.same_as is not None and (row.same_as not in rows or rows[row.same_as].same_as):
            raise SweepError(f"sweep spec {path}, row {row.name!r}: same_as must name a row "
                             f"that runs itself, got {row.same_as!r}")
        if row.same_as is not None and row.seeds is not None:
            raise SweepError(f"sweep spec {path}, row {row.name!r}: a same_as row reuses the "
                             f"runs of {row.same_as!r}; give the seeds there")
        if row.config is not None and not resolve(row.config).is_file():
            raise SweepError(f"sweep spec {path}, row {row.name!r}: config {row.config} "
                             "does not exist")
    comparisons = _comparisons(data.get("comparisons"), rows, path)
    runner = data.get("runner", "notebook")
    if runner not in RUNNERS:
        raise SweepError(f"sweep spec {path}: runner must be one of {RUNNERS}, got {runner!r}")
    notebook = resolve(data.get("notebook") or "notebooks/04_train_model.ipynb")
    if runner == "notebook" and not notebook.is_file():
        raise SweepError(f"sweep spec {path}: notebook {notebook} does not exist")
    return SweepSpec(
        path=path, notebook=notebook,
        out=resolve(data.get("out") or f"runs/sweep-{path.stem}"),
        profile=data.get("profile"), setting=data.get("setting"),
        parameters=_mapping(data, "parameters", str(path)),
        overrides=_mapping(data, "overrides", str(path)),
        rows=rows, seeds=seed_list(data.get("seeds"), f"sweep spec {path}"), runner=runner,
        headings={str(k): str(v) for k, v in _mapping(data, "headings", str(path)).items()},
        comparisons=comparisons,
    )


def _comparisons(value: Any, rows: dict[str, SweepRow], path: Path) -> list[Comparison]:
    """`comparisons`: a list of {better, worse, what}, each naming two rows of the spec."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise SweepError(f"sweep spec {path}: `comparisons` must be a list of "
                         f"{{better: row, worse: row, what: text}}, got {value!r}")
    out = []
    for item in value:
        if (not isinstance(item, dict) or not {"better", "worse", "what"} <= set(item)
                or not set(item) <= {"better", "worse", "what", "ids", "paired"}):
            raise SweepError(f"sweep spec {path}: each comparison is {{better: row, worse: "
                             f"row, what: text}} with optional ids: test | val and paired: "
                             f"true | false, got {item!r}")
        unknown = [item[k] for k in ("better", "worse")
                   if str(item[k]).split(":")[0] not in rows]
        if unknown:
            raise SweepError(f"sweep spec {path}: comparison {item['what']!r} names "
                             f"row(s) {unknown} that the spec does not have")
        ids = str(item.get("ids", "test"))
        if ids not in ("test", "val"):
            raise SweepError(f"sweep spec {path}: comparison {item['what']!r} has ids: {ids!r}; "
                             "use test (the spec's setting) or val (the validation ids)")
        out.append(Comparison(str(item["better"]), str(item["worse"]), str(item["what"]), ids,
                              bool(item.get("paired", False))))
    return out


def default_out(spec: SweepSpec, profile: str | None) -> Path:
    """The spec's `out`; for another profile than the spec's, `<out>-<profile>`.

    So a smoke sweep never lands among (or blocks) the rows of the real one.
    """
    if profile is None or profile == spec.profile:
        return spec.out
    return spec.out.with_name(f"{spec.out.name}-{profile}")
