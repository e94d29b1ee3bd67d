"""The suite's own layout: every test under tests/integration is marked ``integration``, none under tests/unit."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def test_the_integration_mark_is_where_the_integration_tests_are(request: pytest.FixtureRequest) -> None:
    """Of the tests this run collected, those under tests/integration carry the mark and those under tests/unit not.

    So ``-m "not integration"`` runs exactly tests/unit (tests/integration/conftest.py marks them).
    """
    wrong = [
        item.nodeid
        for item in request.session.items
        if item.path.is_relative_to(TESTS / "integration")
        != (item.get_closest_marker("integration") is not None)
    ]
    assert wrong == []
    assert any(item.path.is_relative_to(TESTS / "unit") for item in request.session.items)
