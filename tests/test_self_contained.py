"""A clone needs nothing outside it: no tracked text file points at a folder beside the
repository, at notes that are not in it, or at an absolute path on someone's machine.

The method and the protocols live in docs/method.md and docs/protocols.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Spelt in pieces so that this file does not match itself.
FORBIDDEN = {
    "a folder beside the repository": re.compile(r"\.\./" "shared"),
    "notes that are not in the repository": re.compile(r"FMCNET" r"_SPEC|\bPROTOCOLS" r"\.md"),
    "an absolute path": re.compile(r"/(?:work|home|root)" r"/|(?<![A-Za-z])[A-Z]:" r"\\"),
}



def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                         check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def _text(path: Path) -> str | None:
    """The file as text, or None for a binary file (a NUL byte, or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def outside_references(root: Path, names: list[str]) -> list[str]:
    """`file:line: what (the text)` for every forbidden reference in the named text files."""
    hits = []
    for name in names:
        path = root / name
        if not path.is_file():  # deleted in the working tree, not yet in the index
            continue
        text = _text(path)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    hits.append(f"{name}:{n}: {what} ({line.strip()[:100]})")
    return hits


def test_the_scan_finds_each_kind_of_reference(tmp_path):
    planted = {
        "a.md": "see ../" "shared/notes.md",
        "b.py": '"""As FMCNET' '_SPEC section 2 says."""',
        "c.ipynb": '{"source": ["the rules (PROTOCOLS' '.md)"]}',
        "d.yaml": "data_root: /ho" "me/someone/data",
        "e.txt": "C:" "\\Users\\someone",
        "f.md": "docs/protocols.md, data_root/, ~/.cache, https://example.org/a",
        "g.png": "\0PNG /wo" "rk/ inside a binary file",
    }
    for name, text in planted.items():
        (tmp_path / name).write_text(text)
    hits = outside_references(tmp_path, sorted(planted))
    assert [h.split(":")[0] for h in hits] == ["a.md", "b.py", "c.ipynb", "d.yaml", "e.txt"]


def test_every_tracked_text_file_is_self_contained():
    hits = outside_references(REPO, _tracked_files())
    assert not hits, (
        "tracked files refer outside the repository (the method is in docs/method.md, the "
        "protocols in docs/protocols.md):\n" + "\n".join(hits)
    )
