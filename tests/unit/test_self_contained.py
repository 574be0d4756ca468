"""The repository stands alone: nothing in it points at files outside the checkout."""

import subprocess

from tests.conftest import ROOT


def test_no_tracked_file_refers_to_paths_outside_the_repository():
    files = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.ini", "*.toml", "*.cfg", ".ci/*"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    outside_dir = "/".join(("..", "shared"))  # spelled in pieces so that this file is no such pointer itself
    outside = [f for f in files if outside_dir in (ROOT / f).read_text(encoding="utf-8", errors="replace")]
    assert outside == []


def test_reference_cases_document_is_in_the_repository():
    doc = (ROOT / "docs" / "reference-cases.md").read_text(encoding="utf-8")
    for case in ("A1", "A4", "B3", "C.", "D1", "D3"):
        assert case in doc
    assert "0.9693" in doc and "206,858" in doc  # reported figures the seeds table prints beside ours
