"""Diagnostics of a stream, through Home Assistant's diagnostics API."""

from __future__ import annotations

import json
import os
import signal

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.matchers import path_type

from custom_components.rtsp_announcer import diagnostics
from custom_components.rtsp_announcer.const import DOMAIN

from .common import (
    add_entry,
    ffmpeg_children,
    start_stream,
    unload,
    wait_available,
    wait_for_state,
)
from .helpers.rtsp import ListenReceiver

ENTITY = "media_player.hall"
RATE = 24000
LONG = "The quick brown fox jumps over the lazy dog, and the band plays on."
PASSWORD = "S3cr3tP4ss"  # noqa: S105 - the secret diagnostics must not show

# Figures that depend on timing, process ids or the random port: their type is
# what the snapshot holds.
VOLATILE = path_type(
    {
        "entry.data.url": (str,),
        "publisher.pid": (int,),
        "publisher.publishing_for_s": (float,),
        "publisher.last_progress_s_ago": (float,),
        "publisher.out_time_ms": (int,),
        "publisher.stderr_tail": (list,),
        "stream.transport_buffered_bytes": (int,),
        "clock.frames_written": (int,),
        "clock.frames_dropped": (int,),
        "clock.frames_offline": (int,),
        "clock.frames_late": (int,),
        "clock.ticks": (int,),
        "clock.max_tick_lag_ms": (float,),
        "clock.samples_produced": (int,),
        "clock.drift_samples": (int,),
        "clock.drift_ms": (float,),
        "speech.voices": (int,),
    }
)


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's snapshot format, kept in tests/snapshots/."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


async def test_diagnostics_of_a_publishing_stream(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    receiver: ListenReceiver,
    snapshot: SnapshotAssertion,
) -> None:
    url = receiver.url.replace("rtsp://", f"rtsp://announcer:{PASSWORD}@")
    entry = await start_stream(hass, receiver, url=url)

    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert result == snapshot(matcher=VOLATILE)
    assert result["entry"]["data"]["url"] == (
        f"rtsp://***:***@127.0.0.1:{receiver.port}/announce"
    )
    assert PASSWORD not in json.dumps(result)
    publisher = result["publisher"]
    assert isinstance(publisher, dict)
    assert publisher["pid"] == entry.runtime_data.stream.publisher.pid
    assert publisher["stderr_tail"]
    assert abs(result["clock"]["drift_samples"]) <= RATE
    await unload(hass, entry)


async def test_diagnostics_after_a_crash_and_of_an_unloaded_entry(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    entry = add_entry(hass, receiver.url.replace("rtsp://", f"rtsp://u:{PASSWORD}@"))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, ENTITY)
    await receiver.wait_for_session(1, timeout=10, min_samples=RATE // 4)
    await hass.services.async_call(
        DOMAIN,
        "announce",
        {"entity_id": ENTITY, "message": LONG, "preannounce": False, "wait": False},
        blocking=True,
    )
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 10)
    publisher = entry.runtime_data.stream.publisher
    os.kill(publisher.pid, signal.SIGKILL)
    # Straight from the platform: the state while ffmpeg restarts.
    for _ in range(200):
        result = await diagnostics.async_get_config_entry_diagnostics(hass, entry)
        if result["publisher"]["state"] == "backoff":
            break
        await hass.async_block_till_done()
    assert result["publisher"]["state"] == "backoff"
    assert result["publisher"]["failure"] == "exited"
    assert result["publisher"]["last_error"] == "ffmpeg exited with code -9"
    assert result["publisher"]["next_retry_in_s"] >= 0
    assert result["publisher"]["pid"] is None
    assert result["stream"]["available"] is False
    # The announcement that was playing waits to be played again.
    current = result["queue"]["current"]
    assert current["title"] == LONG
    assert current["state"] == "playing"
    assert current["played_s"] > 0
    assert result["queue"]["replay_pending_bytes"] > 0
    # The local voice speaks it: its breaker is closed.
    breaker = result["voices"]["breakers"]["tts.hall_local_voice"]
    assert breaker == {"state": "closed", "failures": 0, "retry_in_s": None}
    assert PASSWORD not in json.dumps(result)
    await wait_available(hass, ENTITY)
    await hass.services.async_call(
        "media_player", "media_stop", {"entity_id": ENTITY}, blocking=True
    )
    assert await hass.config_entries.async_unload(entry.entry_id)

    unloaded = await diagnostics.async_get_config_entry_diagnostics(hass, entry)
    assert set(unloaded) == {"entry", "issues"}
    assert PASSWORD not in json.dumps(unloaded)
    assert ffmpeg_children() == []
