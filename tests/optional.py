"""Optional parts of the test set-up (PostgreSQL, the browser): one rule for all of them.

A developer without a part gets a skip that says what is missing. In CI (any truthy
`CI`: `true`, `1`, `yes`) nothing may go unrun: `require` fails instead, and the report
hook below turns any other skip into a failure too, so no part can skip silently.
tests/conftest.py imports the hooks, which is what registers them.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

_TRUE = frozenset({"1", "true", "yes", "on"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in _TRUE


def require(condition: object, reason: str) -> None:
    """Go on if `condition` holds; otherwise skip saying `reason` (fail, in CI)."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this part must run)", pytrace=False)
    pytest.skip(reason)


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    # A skip's longrepr is (path, line, "Skipped: reason").
    longrepr = report.longrepr
    reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where every test must run: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # An expected failure (xfail) is reported as skipped too; it is not a missing part.
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if in_ci() and report.skipped:
        _fail_skip(report)
    return report
