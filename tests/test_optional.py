"""In CI nothing skips: `require` and any other skip fail there, and pass through elsewhere.

Each case runs a small test file in a pytest of its own, with this suite's hooks loaded
as a plugin and `CI` set as a CI runner would set it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .optional import in_ci

ROOT = Path(__file__).resolve().parents[1]

INNER = """
import pytest
from tests.optional import require

def test_missing_part():
    require(False, "no frobnicator here")

def test_present_part():
    require(True, "never said")

@pytest.mark.skip(reason="a plain skip mark")
def test_marked():
    pass

@pytest.mark.xfail(strict=True, reason="known")
def test_expected_failure():
    assert False
"""

SKIPPED_MODULE = """
import pytest
pytest.importorskip("no_such_module_anywhere")

def test_never_collected():
    pass
"""


def run_inner(tmp_path: Path, source: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    # -c /dev/null: none of this project's configuration (no coverage, no warning filter).
    command = [sys.executable, "-m", "pytest", "-p", "tests.optional", "-p", "no:cacheprovider"]
    command += ["-c", os.devnull, "--rootdir", str(tmp_path), "-rA", str(test_file)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("ci", ["true", "1", "yes", "TRUE"])
def test_in_ci_every_skip_is_a_failure(tmp_path: Path, ci: str) -> None:
    result = run_inner(tmp_path, INNER, ci)
    assert result.returncode == 1, result.stdout
    last = result.stdout.strip().splitlines()[-1]
    # A skip in set-up (a mark, or a fixture such as the PostgreSQL database) is an error.
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in last, result.stdout
    assert "FAILED" in result.stdout and "no frobnicator here" in result.stdout
    assert "skipped in CI, where every test must run: a plain skip mark" in result.stdout


@pytest.mark.parametrize("ci", [None, "", "false", "0", "no"])
def test_outside_ci_a_missing_part_skips_saying_why(tmp_path: Path, ci: str | None) -> None:
    result = run_inner(tmp_path, INNER, ci)
    assert result.returncode == 0, result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert "1 passed, 2 skipped, 1 xfailed" in last, result.stdout
    assert "no frobnicator here" in result.stdout


def test_in_ci_a_module_skipped_at_collection_is_a_failure(tmp_path: Path) -> None:
    assert run_inner(tmp_path, SKIPPED_MODULE, None).returncode == 5  # skipped: nothing ran
    result = run_inner(tmp_path, SKIPPED_MODULE, "true")
    assert result.returncode != 0 and result.returncode != 5, result.stdout
    assert "skipped in CI, where every test must run" in result.stdout
    assert "no_such_module_anywhere" in result.stdout


def test_the_ci_check(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("true", True), ("1", True), ("Yes", True), ("false", False)]:
        monkeypatch.setenv("CI", value)
        assert in_ci() is expected
    monkeypatch.delenv("CI")
    assert in_ci() is False
