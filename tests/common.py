"""Shared pieces of the Home Assistant side of the tests."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import psutil
from homeassistant.components.tts import TextToSpeechEntity
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    mock_config_flow,
    mock_integration,
    mock_platform,
    setup_test_component_platform,
)

from custom_components.rtsp_announcer.const import CONF_NAME, CONF_URL, DOMAIN

from .helpers.rtsp import DEFAULT_RATE
from .helpers.waiting import until

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .helpers.rtsp import ListenReceiver

HALL = "media_player.hall"
# Nothing listens on the discard port: a stream publishing there is down.
DEAD_URL = "rtsp://127.0.0.1:9/announce"

# Only the integration's ffmpeg processes use these; the test servers do not.
_OWN_FLAGS = {"-progress", "-protocol_whitelist"}


def ffmpeg_children() -> list[psutil.Process]:
    """The integration's ffmpeg processes (publishers, decoders) still alive."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if (
                child.name() == "ffmpeg"
                and child.status() != psutil.STATUS_ZOMBIE
                and _OWN_FLAGS & set(child.cmdline())
            ):
                alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return alive


def add_entry(
    hass: HomeAssistant, url: str, *, name: str = "Hall", **options: object
) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=name,
        data={CONF_NAME: name, CONF_URL: url},
        options=options,
        unique_id=f"{url}#{name}",
    )
    entry.add_to_hass(hass)
    return entry


async def start_stream(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    name: str = "Hall",
    *,
    min_samples: int = DEFAULT_RATE // 4,
    options: Mapping[str, object] | None = None,
    url: str | None = None,
) -> MockConfigEntry:
    """Set up a stream publishing to `receiver` (at `url` if given, credentials in
    it, say); return once its audio arrives."""
    entry = add_entry(hass, url or receiver.url, name=name, **(options or {}))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, f"media_player.{name.lower()}")
    await receiver.wait_for_session(1, timeout=10, min_samples=min_samples)
    return entry


async def announce(
    hass: HomeAssistant, entity_id: str | list[str] = HALL, **data: Any
) -> dict[str, Any]:
    """Call rtsp_announcer.announce (no chime unless asked); the response by entity."""
    data.setdefault("preannounce", False)
    response = await hass.services.async_call(
        DOMAIN,
        "announce",
        {"entity_id": entity_id, **data},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def speak(hass: HomeAssistant, engine: str, message: str) -> None:
    """Call tts.speak with `engine` to the stream "Hall", uncached."""
    await hass.services.async_call(
        "tts",
        "speak",
        {
            "entity_id": engine,
            "media_player_entity_id": HALL,
            "message": message,
            "cache": False,
        },
        blocking=True,
    )


async def play_media(hass: HomeAssistant, media_id: str, **extra: object) -> None:
    """Call media_player.play_media on the stream "Hall"."""
    await hass.services.async_call(
        "media_player",
        "play_media",
        {
            "entity_id": HALL,
            "media_content_id": media_id,
            "media_content_type": "music",
            **extra,
        },
        blocking=True,
    )


async def notify(hass: HomeAssistant, message: str) -> None:
    """Send `message` to the stream "Hall"'s notify entity."""
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.hall_speaker", "message": message},
        blocking=True,
    )


async def unload(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Unload the stream's entry; its ffmpeg must be gone with it."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


async def heard_after(
    receiver: ListenReceiver, before: int, tail_s: float = 0.8
) -> NDArray[np.int16]:
    """What arrived since sample `before`, once `tail_s` more has arrived."""
    await receiver.wait_for_samples(
        receiver.total_samples + int(tail_s * receiver.rate), timeout=5
    )
    return receiver.samples()[before:]


async def wait_for_state(
    hass: HomeAssistant,
    entity_id: str,
    predicate: Callable[[State], bool],
    timeout: float = 10.0,  # noqa: ASYNC109
) -> State:
    """Poll until the entity's state satisfies `predicate`."""

    def matches() -> bool:
        state = hass.states.get(entity_id)
        return state is not None and predicate(state)

    try:
        await until(matches, timeout, entity_id)
    except TimeoutError:
        msg = f"{entity_id} never matched; last state {hass.states.get(entity_id)}"
        raise TimeoutError(msg) from None
    state = hass.states.get(entity_id)
    assert state is not None
    return state


async def wait_available(
    hass: HomeAssistant,
    entity_id: str,
    timeout: float = 15.0,  # noqa: ASYNC109
    *,
    available: bool = True,
) -> State:
    """Wait until the entity is available (with `available=False`: unavailable)."""
    return await wait_for_state(
        hass, entity_id, lambda s: (s.state != STATE_UNAVAILABLE) is available, timeout
    )


async def wait_unavailable(
    hass: HomeAssistant,
    entity_id: str,
    timeout: float = 5.0,  # noqa: ASYNC109
) -> State:
    return await wait_available(hass, entity_id, timeout, available=False)


def no_ffmpeg() -> contextlib.AbstractContextManager[object]:
    """Home Assistant's ffmpeg binary points nowhere while this is entered."""
    return patch(
        "homeassistant.components.ffmpeg.FFmpegManager.binary",
        new="/nonexistent/ffmpeg",
    )


def make_tone(path: Path, *, freq: int, seconds: float, rate: int = 44100) -> Path:
    """Write a sine tone file with ffmpeg (a real media file to decode)."""
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"sine=frequency={freq}:sample_rate={rate}:duration={seconds}",
            "-ac", "1", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def state_of(hass: HomeAssistant, entity_id: str) -> State:
    """The entity's current state; it must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, f"{entity_id} does not exist"
    return state


def record_events(hass: HomeAssistant, event_type: str) -> list[Event]:
    """Collect events in firing order.

    The listener is a callback, so it runs in the loop in order; a plain
    function would be run in the executor, in any order.
    """
    events: list[Event] = []

    @callback
    def record(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(event_type, record)
    return events


async def add_voice(hass: HomeAssistant, *voices: TextToSpeechEntity) -> None:
    """Set the entities up as another integration's TTS entities."""
    assert await async_setup_component(hass, "tts", {})

    async def setup_test_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        await hass.config_entries.async_forward_entry_setups(entry, [Platform.TTS])
        return True

    mock_integration(hass, MockModule("test", async_setup_entry=setup_test_entry))
    mock_platform(hass, "test.config_flow")
    setup_test_component_platform(hass, "tts", list(voices), from_config_entry=True)
    other = MockConfigEntry(domain="test")
    other.add_to_hass(hass)
    with mock_config_flow("test", ConfigFlow):
        assert await hass.config_entries.async_setup(other.entry_id)
