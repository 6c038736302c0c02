"""The README is the front door (issue 25): short, the two commands first, a place for the
demo's printed output, the paper and how to cite it; and every relative link of a tracked
Markdown file or notebook leads to a file (and heading) that exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAX_LINES = 150

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _documents() -> list[Path]:
    """Every tracked Markdown file and notebook (their links are read the same way)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return [README, REPO / "BENCHMARKS.md", *sorted((REPO / "docs").glob("*.md")),
                *sorted((REPO / "notebooks").glob("*.ipynb"))]
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "*.md", "*.ipynb"],
                         capture_output=True, check=True).stdout.decode()
    return [REPO / name for name in out.split("\0") if name and (REPO / name).is_file()]


def _markdown(path: Path) -> str:
    """The Markdown of a file: the file, or a notebook's Markdown cells."""
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = CODE_SPAN.sub(lambda m: m.group(0)[1:-1], heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", _markdown(path))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    """`file: link (why)` for every relative link of `path` whose file or heading is missing
    (`file` relative to `root`)."""
    text = CODE_SPAN.sub("", FENCE.sub("", _markdown(path)))
    broken = []
    for link in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", link):  # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        dest = (path.parent / target).resolve() if target else path
        if not dest.exists():
            broken.append(f"{path.relative_to(root)}: {link} (no such file)")
        elif anchor and dest.suffix in (".md", ".ipynb") and anchor not in anchors(dest):
            broken.append(f"{path.relative_to(root)}: {link} (no such heading)")
    return broken


def test_slug_and_broken_links_on_a_small_document(tmp_path):
    assert slug("Licence and citation") == "licence-and-citation"
    assert slug("The `quick` profile, key by key") == "the-quick-profile-key-by-key"
    (tmp_path / "there.md").write_text("# A heading\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](there.md#a-heading) [gone](missing.md) [bad](there.md#nope)\n"
                   "`[code](missing.md)` [web](https://example.org)\n")
    assert broken_links(doc, root=tmp_path) == ["doc.md: missing.md (no such file)",
                                                "doc.md: there.md#nope (no such heading)"]
    nb = tmp_path / "00_x.ipynb"
    nb.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["[ok](there.md) ", "[gone](../none.md)"]},
        {"cell_type": "code", "source": ["# [not a link](missing.md)"], "outputs": []}]}))
    assert broken_links(nb, root=tmp_path) == ["00_x.ipynb: ../none.md (no such file)"]


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, (f"README.md has {n} lines, more than the front door's {MAX_LINES}: "
                            "move the detail to docs/usage.md or docs/")


def test_readme_opens_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    first_block = FENCE.search(text)
    assert first_block, "README.md has no code block"
    assert "\n## " not in text[:first_block.start()], "the two commands come before any section"
    lines = [ln.split("#")[0].strip() for ln in first_block.group(0).splitlines()[1:-1]]
    assert lines == ["make demo", "make test"]


def test_readme_keeps_a_place_for_the_demo_output():
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- demo-output -->\n(.*?)<!-- /demo-output -->", text, re.S)
    assert m, "README.md lost its <!-- demo-output --> ... <!-- /demo-output --> block"
    assert re.fullmatch(r"```text\n.*\n```\n", m.group(1), re.S), "the block holds one text fence"


def test_readme_cites_the_paper_as_citation_cff_does():
    text = README.read_text(encoding="utf-8")
    assert "openaccess.thecvf.com/content/CVPR2022" in text, "the paper's link"
    bib = re.search(r"```bibtex\n(.*?)```", text, re.S)
    assert bib, "README.md has no BibTeX block"
    fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", bib.group(1), re.M))
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))["preferred-citation"]
    assert fields["doi"] == cff["doi"]
    assert int(fields["year"]) == cff["year"]
    assert fields["pages"] == f"{cff['start']}--{cff['end']}"
    assert fields["title"].replace("{", "").replace("}", "") == cff["title"]
    assert [a.split(",")[0].strip() for a in fields["author"].split(" and ")] == [
        a["family-names"] for a in cff["authors"]]
    assert "MIT" in (REPO / "LICENSE").read_text(encoding="utf-8")


def test_readme_shows_how_to_reproduce_on_the_three_datasets():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Reproduce"):]
    section = section[:section.index("\n## ", 1)]
    for dataset in ("sysu", "regdb", "llcm"):
        assert re.search(rf"python -m fmcnet train --dataset {dataset} .*--profile paper", section)
    assert "gallery_sampler=owners" in section and "rand_perm_cam.mat" in section
    assert "--trial all" in section
    assert re.search(r"torchrun .*-m fmcnet train", section)
    assert "world_size × P × K" in section


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_lead_somewhere(path):
    assert broken_links(path) == []
