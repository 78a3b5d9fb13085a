"""Fixtures shared by the Home Assistant side of the tests."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
from homeassistant.core import Event, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.audio.exceptions import SpeechUnavailableError
from custom_components.rtsp_announcer.audio.speech import SpeechBackend, SpeechEngine
from custom_components.rtsp_announcer.const import EVENT_ANNOUNCEMENT

from .common import (
    DEAD_URL,
    HALL,
    add_entry,
    ffmpeg_children,
    make_tone,
    wait_available,
)
from .helpers.http import HttpServer, SilentServer
from .helpers.rtsp import ListenReceiver


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


def _missing_library() -> SpeechBackend:
    raise SpeechUnavailableError("libespeak-ng cannot be loaded")


@pytest.fixture
def no_espeak() -> Iterator[None]:
    """The local voice finds no libespeak-ng, as on a system without it."""

    def engine() -> SpeechEngine:
        return SpeechEngine(loader=_missing_library)

    with patch("custom_components.rtsp_announcer.speech.SpeechEngine", engine):
        yield


@pytest.fixture
def mock_setup_entry() -> Generator[AsyncMock]:
    """Keep the integration itself (ffmpeg and all) out of the flow tests."""
    with patch(
        "custom_components.rtsp_announcer.async_setup_entry",
        new_callable=AsyncMock,
        return_value=True,
    ) as mock:
        yield mock


@pytest.fixture
async def receiver() -> AsyncGenerator[ListenReceiver]:
    """A real RTSP server (ffmpeg's listener, any path, TCP or UDP) that records."""
    async with ListenReceiver() as running:
        yield running


@pytest.fixture
async def server(socket_enabled: None) -> AsyncGenerator[HttpServer]:
    """An HTTP server on 127.0.0.1 whose paths answer as the test routes them."""
    async with HttpServer() as running:
        yield running


@pytest.fixture
async def silent_port(socket_enabled: None) -> AsyncGenerator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers."""
    async with SilentServer() as silent:
        yield silent.port


@pytest.fixture
async def entry(hass: HomeAssistant) -> AsyncGenerator[MockConfigEntry]:
    """A stream "Hall" that is down: nothing listens on its port."""
    entry = add_entry(hass, DEAD_URL)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def live(hass: HomeAssistant) -> AsyncGenerator[MockConfigEntry]:
    """A stream "Hall" that publishes to a real RTSP server."""
    async with ListenReceiver() as running:
        entry = add_entry(hass, running.url)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, HALL)
        yield entry
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


@pytest.fixture
def tone(tmp_path: Path) -> bytes:
    """0.6 s of a 500 Hz tone as MP3: what a `ToneVoice` says."""
    return make_tone(tmp_path / "tone.mp3", freq=500, seconds=0.6).read_bytes()


@pytest.fixture
def events(hass: HomeAssistant) -> list[dict[str, Any]]:
    """The data of every announcement event, in order."""
    seen: list[dict[str, Any]] = []

    @callback
    def heard(event: Event) -> None:
        seen.append(dict(event.data))

    hass.bus.async_listen(EVENT_ANNOUNCEMENT, heard)
    return seen
