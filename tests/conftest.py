"""Fixtures shared by the Home Assistant side of the tests."""

from __future__ import annotations

from collections.abc import Generator
from unittest.mock import patch

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Load integrations from custom_components in every test that has a hass."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")


@pytest.fixture(autouse=True)
def no_tts_file_cache() -> Generator[None]:
    """Keep Home Assistant's TTS file cache out of the shared test config dir.

    Otherwise audio rendered in one run is served from disk in the next, and
    tests of what a TTS engine is asked would pass or fail by history.
    """
    with patch("homeassistant.components.tts.DEFAULT_CACHE", new=False):
        yield
