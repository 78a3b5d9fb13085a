"""The call-number screen end to end: the H.264 track at a real RTSP reader.

The integration's ffmpeg publishes both tracks to ffmpeg's RTSP listener, which
decodes them (tests/screen_reader.py); what the screen shows is read back with
tesseract, and the time of the picture is compared with the time of the sound
on the reader's own time line.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant

from custom_components.rtsp_announcer.const import (
    CONF_VIDEO,
    CONF_VIDEO_FPS,
    CONF_VIDEO_HISTORY,
    CONF_VIDEO_RESOLUTION,
    DOMAIN,
)

from .common import add_entry, ffmpeg_children, wait_available
from .screen_reader import Frame, ScreenReader, ocr

ENTITY = "media_player.hall"
pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)


def screen_options(fps: int = 5, **extra: Any) -> dict[str, Any]:
    return {
        CONF_VIDEO: True,
        CONF_VIDEO_RESOLUTION: "640x360",
        CONF_VIDEO_FPS: fps,
        CONF_VIDEO_HISTORY: 3,
        **extra,
    }


async def announce(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    data.setdefault("preannounce", False)
    response = await hass.services.async_call(
        DOMAIN,
        "announce",
        {"entity_id": ENTITY, **data},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def wait_frames(reader: ScreenReader, count: int, limit: float = 10) -> None:
    async with asyncio.timeout(limit):
        while len(reader.frames()) < count:  # noqa: ASYNC110 - ffmpeg's log, polled
            await asyncio.sleep(0.05)


async def start(hass: HomeAssistant, reader: ScreenReader, **options: Any) -> None:
    entry = add_entry(hass, reader.url, **options)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, ENTITY)
    await wait_frames(reader, 3)


async def test_screen_shows_text_in_sync_with_speech(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    async with ScreenReader(tmp_path) as reader:
        await start(hass, reader, **screen_options(fps=10))
        # One audio and one video track in the one session.
        assert reader.stream_kinds() == ["audio:aac", "video:h264"]
        before = reader.frames()[-1].pts

        await announce(hass, message="A042", display_text="A042")
        await wait_frames(reader, len(reader.frames()) + 5)
        onset = reader.onset_after(before)
        change = reader.first_change_after(before)
        assert onset is not None
        assert change is not None
        shown_before, shown = change
        offset = shown.pts - onset
        assert abs(offset) <= 0.1, f"picture {offset * 1000:+.0f} ms from speech"
        assert "A042" not in await ocr(shown_before.path)
        assert "A042" in await ocr(shown.path)

        # Chinese, and the history: the call before moves below.
        before = reader.frames()[-1].pts
        await announce(hass, message="A043", display_text="请到三号窗口")
        await wait_frames(reader, len(reader.frames()) + 5)
        change = reader.first_change_after(before)
        assert change is not None
        text = await ocr(change[1].path, "chi_sim+eng")
        assert "三号窗口" in text, text
        assert "A042" in text, text

        # A keyframe at least every 2 s (one a second here): a reader that
        # joins sees a picture within that.
        keys = [frame.pts for frame in reader.frames() if frame.key]
        assert len(keys) >= 2
        assert max(b - a for a, b in itertools.pairwise(keys)) <= 2.0
        await hass.config_entries.async_unload(
            hass.config_entries.async_entries(DOMAIN)[0].entry_id
        )
    assert ffmpeg_children() == []


async def test_screen_comes_back_after_ffmpeg_is_killed(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    async with ScreenReader(tmp_path) as reader:
        await start(hass, reader, **screen_options(fps=5))
        await announce(hass, message="B7", display_text="B7")
        await wait_frames(reader, len(reader.frames()) + 3)
        (publisher,) = ffmpeg_children()
        os.kill(publisher.pid, signal.SIGKILL)
        # The listener ends with its publisher; a new one takes the restart.
        await reader.stop()
        await reader.start()
        await wait_available(hass, ENTITY)
        await wait_frames(reader, 3)
        frame: Frame = reader.frames()[-1]
        # What was on screen is on screen again.
        assert "B7" in await ocr(frame.path)
        (restarted,) = ffmpeg_children()
        assert restarted.pid != publisher.pid
        await hass.config_entries.async_unload(
            hass.config_entries.async_entries(DOMAIN)[0].entry_id
        )
    assert ffmpeg_children() == []
