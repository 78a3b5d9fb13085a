"""A setup that fails leaves no process, socket or FIFO directory, timer or task.

The plugin's `verify_cleanup` fails the test on a leftover timer, task or thread;
these tests check the processes and the socket directory themselves.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntries, ConfigEntryState
from homeassistant.core import HomeAssistant

from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.stream import AudioStream

from .common import add_entry, ffmpeg_children
from .helpers.rtsp import ListenReceiver

PACKAGE = "custom_components.rtsp_announcer"


@pytest.fixture
def started() -> Generator[list[tuple[AudioStream, Path | None]]]:
    """The streams that were started, and the socket directory each made."""
    streams: list[tuple[AudioStream, Path | None]] = []
    original = AudioStream.start

    async def start(self: AudioStream) -> None:
        await original(self)
        feed = self.feed
        streams.append((self, None if feed is None else feed.path.parent))

    with patch.object(AudioStream, "start", start):
        yield streams


async def fail_after_start(*_args: Any, **_kwargs: Any) -> Any:
    msg = "broken after the stream started"
    raise RuntimeError(msg)


async def test_ffmpeg_missing_starts_nothing(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    started: list[tuple[AudioStream, Path | None]],
) -> None:
    entry = add_entry(hass, receiver.url)
    with patch(f"{PACKAGE}.binary_runs", return_value=False):
        assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert ffmpeg_children() == []
    assert started == []
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("transport", ["socket", "fifo"])
@pytest.mark.parametrize(
    "target",
    [
        (f"{PACKAGE}.async_acquire_speech", None),
        (None, "async_forward_entry_setups"),
    ],
    ids=["after_the_stream_started", "platform_forward"],
)
async def test_a_failure_after_the_stream_started_stops_it(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    started: list[tuple[AudioStream, Path | None]],
    target: tuple[Any, Any],
    transport: str,
) -> None:
    entry = add_entry(hass, receiver.url, **{opt.PCM_TRANSPORT.key: transport})
    name, method = target
    patcher = (
        patch(name, side_effect=fail_after_start)
        if name is not None
        else patch.object(ConfigEntries, method, side_effect=fail_after_start)
    )
    with patcher:
        assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert ffmpeg_children() == []
    ((stream, socket_dir),) = started
    assert stream.transport.value == transport
    assert socket_dir is not None
    assert not socket_dir.exists()
    assert not stream.clock.running
