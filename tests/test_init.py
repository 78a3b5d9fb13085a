"""Setting up, reloading and unloading entries: nothing outlives an entry."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.options import (
    Codec,
    PcmTransport,
    RtspTransport,
)
from custom_components.rtsp_announcer.const import CONF_NAME, CONF_URL, DOMAIN

from .common import ffmpeg_children, no_ffmpeg, unload

# Nothing listens on the discard port: ffmpeg starts, fails to connect, retries.
DEAD_URL = "rtsp://user:secret@127.0.0.1:9/announce"


def state_of(entry: MockConfigEntry) -> ConfigEntryState:
    """Read the state afresh (it changes behind mypy's narrowing)."""
    state: ConfigEntryState = entry.state
    return state


def make_entry(hass: HomeAssistant, **options: object) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Hall",
        data={CONF_NAME: "Hall", CONF_URL: DEAD_URL},
        options=options,
        unique_id="rtsp://127.0.0.1:9/announce",
    )
    entry.add_to_hass(hass)
    return entry


async def test_setup_creates_device_and_unavailable_stream(hass: HomeAssistant) -> None:
    entry = make_entry(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    state = hass.states.get("media_player.hall")
    assert state is not None
    # ffmpeg cannot reach a server: the stream is not publishing.
    assert state.state == STATE_UNAVAILABLE

    entity = er.async_get(hass).async_get("media_player.hall")
    assert entity is not None
    assert entity.unique_id == f"{entry.entry_id}_stream"
    # Looked up through the entry: async_get_device(identifiers=...) is refused
    # from 2026 on (identifiers are unique per config entry only), and
    # async_get_device_by_identifier does not exist in 2025.4.
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert device.identifiers == {(DOMAIN, entry.entry_id)}
    assert device.name == "Hall"
    assert "secret" not in str(device.serial_number)

    stream = entry.runtime_data.stream
    assert stream.feed is not None
    socket_dir = stream.feed.path.parent
    assert socket_dir.exists()
    # Only we may connect to the socket and inject audio.
    assert socket_dir.stat().st_mode & 0o777 == 0o700
    assert stream.clock.running

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert state_of(entry) is ConfigEntryState.NOT_LOADED
    assert not socket_dir.exists()
    assert not stream.clock.running
    assert ffmpeg_children() == []


async def test_settings_follow_options(hass: HomeAssistant) -> None:
    entry = make_entry(
        hass,
        **{
            opt.CODEC.key: "pcm_mulaw",
            opt.PCM_TRANSPORT.key: "pipe",
            opt.SAMPLE_RATE.key: 8000,
            opt.RTSP_TRANSPORT.key: "udp",
        },
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    settings = entry.runtime_data.stream.settings
    assert settings.codec is Codec.PCM_MULAW
    assert settings.pcm_transport is PcmTransport.PIPE
    assert settings.sample_rate == 8000
    assert settings.rtsp_transport is RtspTransport.UDP
    # The pipe transport has no socket to leave behind.
    assert entry.runtime_data.stream.feed is None
    await unload(hass, entry)


async def test_options_change_reloads(hass: HomeAssistant) -> None:
    entry = make_entry(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    old_stream = entry.runtime_data.stream
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    schema = flow["data_schema"]
    assert schema is not None
    defaults = schema({})
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"], defaults | {opt.SAMPLE_RATE.key: "48000"}
    )
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    new_stream = entry.runtime_data.stream
    assert new_stream is not old_stream
    assert new_stream.settings.sample_rate == 48000
    assert not old_stream.clock.running
    await unload(hass, entry)


async def test_missing_ffmpeg_retries_setup(hass: HomeAssistant) -> None:
    entry = make_entry(hass)
    with no_ffmpeg():
        await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert "ffmpeg" in entry.reason


@pytest.mark.parametrize(
    ("transport", "failing"),
    [
        ("socket", "tempfile.mkdtemp"),
        ("fifo", "tempfile.mkdtemp"),
        ("fifo", "os.mkfifo"),
    ],
)
async def test_socket_failure_falls_back_to_the_pipe(
    hass: HomeAssistant, tmp_path: Path, transport: str, failing: str
) -> None:
    entry = make_entry(hass, **{opt.PCM_TRANSPORT.key: transport})
    with patch(
        f"custom_components.rtsp_announcer.audio.transport.{failing}",
        side_effect=OSError(28, "No space left on device"),
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    stream = entry.runtime_data.stream
    assert stream.feed is None
    assert stream.transport is PcmTransport.PIPE
    await unload(hass, entry)


@pytest.mark.parametrize("transport", ["socket", "fifo"])
async def test_home_assistant_stop_stops_the_stream(
    hass: HomeAssistant, transport: str
) -> None:
    entry = make_entry(hass, **{opt.PCM_TRANSPORT.key: transport})
    assert await hass.config_entries.async_setup(entry.entry_id)
    stream = entry.runtime_data.stream
    assert stream.transport.value == transport
    assert stream.feed is not None
    socket_dir = stream.feed.path.parent
    await hass.async_stop()
    assert not stream.clock.running
    assert not socket_dir.exists()
    assert ffmpeg_children() == []
