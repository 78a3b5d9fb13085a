"""Fixtures shared by the Home Assistant side of the tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Load integrations from custom_components in every test that has a hass."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")
