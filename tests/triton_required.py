"""A `triton` test that skips for want of the server fails where Triton is required.

`./run test` (what CI runs) installs the bundled Triton server and sets EDGEASR_REQUIRE_TRITON=1.
There, a test marked `triton` that skips because the server is missing (its reason names Triton)
is reported as failed instead of passing silently. Elsewhere the skip stands, with its reason.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and item.get_closest_marker("triton") and os.environ.get("EDGEASR_REQUIRE_TRITON") == "1"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if "triton" in reason.lower():
        report.outcome = "failed"
        report.longrepr = f"Triton is required here (EDGEASR_REQUIRE_TRITON=1, set by ./run test): {reason}"
