"""The notebooks as committed artefacts: each names the commit it was rendered from, none
types a number of the study, and `make notebooks` (fmcnet.notebooks) writes outputs that
name no path of the machine that rendered them -- and nothing at all when one fails."""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from fmcnet import notebooks
from fmcnet.utils import FMCNetError, git_commit

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob(notebooks.NOTEBOOK_GLOB))

# mean ± std, or a p-value: the study's numbers, which the notebooks render instead
STUDY_NUMBER = re.compile(r"\d+(?:\.\d+)? ?± ?\d|\bp ?[=<] ?0?\.\d")
STUDY_JSON = REPO / "results" / "synthetic_ablations.json"


def _study_numbers():
    """The study's numbers as its report writes them (fmcnet.study: one decimal), as
    regexes: every row's mean R1 and mAP (test, and val from its diagnostics) and every
    comparison's R1 and mAP difference. A value of 10 or more matches as a bare number (as
    a mean or a difference of either sign); one under 10 only as a signed difference
    ("+2.3", "-2.3", "−2.3"), since bare small values (0.5, 0.7, 2.0) are the method's
    constants as often as the study's."""
    study = json.loads(STUDY_JSON.read_text())
    means, diffs = set(), set()
    for row in study["rows"]:
        diag = row.get("diagnostics") or {}
        for m in ("R1", "mAP"):
            means.update(v for v in (row.get(f"{m}_mean"), (diag.get(f"val/{m}") or {}).get("mean"))
                         if v is not None)
    for c in study["comparisons"]:
        diffs.update(c[m]["diff"] for m in ("R1", "mAP") if c[m].get("diff") is not None)
    bare = {f"{abs(v):.1f}" for v in means | diffs if round(abs(v), 1) >= 10}
    signed = {f"{abs(v):.1f}" for v in diffs if round(abs(v), 1) < 10}
    return ([re.compile(rf"(?<![\d.]){re.escape(s)}(?!\d)") for s in sorted(bare)]
            + [re.compile(rf"[+\-−] ?{re.escape(s)}(?!\d)") for s in sorted(signed)])


def _cells(path, kind):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def test_all_nine_notebooks_are_rendered_by_the_one_command():
    assert [p.name[:2] for p in notebooks.notebook_paths()] == [f"0{i}" for i in range(9)]
    assert [p.name for p in notebooks.notebook_paths(only=["02", "07_map"])] == [
        "02_compensate_modality.ipynb", "07_map_features.ipynb"]
    with pytest.raises(FMCNetError, match="no notebook in"):
        notebooks.notebook_paths(only=["99"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_each_notebook_first_says_which_commit_it_was_rendered_from(path):
    first = "".join(_cells(path, "code")[0]["source"])
    assert "from fmcnet.notebooks import rendered_from" in first and "rendered_from()" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_no_notebook_types_a_number_of_the_study(path):
    typed = [line for cell in _cells(path, "markdown") for line in "".join(cell["source"]).split("\n")
             if STUDY_NUMBER.search(line)]
    assert not typed, f"{path.name}: render these from results/*.json instead: {typed}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_no_notebook_types_a_mean_or_difference_of_the_study(path):
    numbers = _study_numbers()
    assert len(numbers) > 20  # the study's JSON was read
    typed = [(i, m.group(0), line.strip())
             for i, cell in enumerate(json.loads(path.read_text())["cells"])
             if cell["cell_type"] in ("markdown", "code")
             for line in "".join(cell["source"]).split("\n")
             for pattern in numbers for m in pattern.finditer(line)]
    assert not typed, (f"{path.name}: cells type the study's numbers (cell, number, line); "
                       f"render them with analysis.study_summary instead: {typed}")


def test_the_study_sections_render_from_the_json():
    for nn in ("01", "02", "03", "06"):
        path = next(p for p in NOTEBOOKS if p.name.startswith(nn))
        assert any("analysis.study_summary(" in "".join(c["source"]) for c in _cells(path, "code")), nn


def test_rendered_from_names_the_commit_and_the_profile(monkeypatch, capsys):
    monkeypatch.setenv("FMCNET_PROFILE", "smoke")
    assert notebooks.rendered_from() is None  # printed once: a returned value would show twice
    out = capsys.readouterr().out
    assert out == f"rendered from fmcnet commit {git_commit()} with FMCNET_PROFILE=smoke " \
                  "(the parameters cell reads it)\n"


def test_outputs_name_paths_relative_to_the_checkout(tmp_path):
    root = tmp_path / "checkout"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=f"{root}/runs/demo: resnet18\n"),
        nbformat.v4.new_output("execute_result", execution_count=1, data={
            "text/plain": f"'{root}'", "text/html": f"<b>{Path.home()}/data</b>",
            "image/png": "iVBORw0KGgo="}),
        nbformat.v4.new_output("error", ename="E", evalue=f"{sys.prefix}/lib/x.py",
                               traceback=[f"File {root}/fmcnet/a.py"]),
    ])])
    assert notebooks.relative_outputs(nb, root) == 3
    stream, result, error = nb.cells[0].outputs
    assert stream["text"] == "runs/demo: resnet18\n"
    assert result["data"]["text/plain"] == "'.'" and result["data"]["text/html"] == "<b>~/data</b>"
    assert result["data"]["image/png"] == "iVBORw0KGgo="
    assert error["evalue"] == "<python>/lib/x.py" and error["traceback"] == ["File fmcnet/a.py"]


def _notebook(path, *sources):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(s) for s in sources],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}}), path)
    return path


def test_render_executes_every_notebook_then_writes_them(tmp_path):
    src = tmp_path / "src"
    good = _notebook(src / "00_a.ipynb", "import pathlib\nprint(pathlib.Path.cwd().name)",
                     f"print({str(notebooks._checkout())!r} + '/runs/demo')")
    broken = _notebook(src / "01_b.ipynb", "raise ValueError('no run folder')")
    before = good.read_text()
    with pytest.raises(FMCNetError, match="01_b.ipynb failed in cell 0: ValueError: no run folder"):
        notebooks.render([good, broken], out=tmp_path / "out")
    assert not (tmp_path / "out").exists() and good.read_text() == before  # nothing written

    seconds = notebooks.render([good], out=tmp_path / "out")
    assert list(seconds) == [good] and seconds[good] > 0
    outputs = [o["text"] for c in nbformat.read(tmp_path / "out" / good.name, 4).cells
               for o in c.outputs]
    assert outputs == ["src\n", "runs/demo\n"]  # run in its own folder; the path made relative
    assert good.read_text() == before
