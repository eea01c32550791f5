"""Report figures are read from the rollups or, where no rollup holds what a page asks,
from the live rows: the aggregate tests run against both (`report`), and must agree."""

from __future__ import annotations

import pytest

from reporting.filters import ReportFilter
from reporting.services import rollups_refresh


@pytest.fixture(params=["rollups", "live"])
def report(request):
    """`report(data)`: a ReportFilter over the rollups (rewritten first) or the live rows."""
    rollups = request.param == "rollups"

    def make(data=None) -> ReportFilter:
        if rollups:
            rollups_refresh(restate=True)
        return ReportFilter(data or {}, rollups=rollups)

    return make
