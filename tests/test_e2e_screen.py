"""The call-number screen end to end: the H.264 track at a real RTSP reader.

The integration's ffmpeg publishes both tracks to ffmpeg's RTSP listener, which
decodes them (tests/screen_reader.py); what the screen shows is read back with
tesseract, and the time of the picture is compared with the time of the sound
on the reader's own time line.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components import image
from homeassistant.components.camera import Camera
from homeassistant.components.image import ImageEntity
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from PIL import Image
from pytest_homeassistant_custom_component.common import (
    setup_test_component_platform,
)

from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.const import DOMAIN
from custom_components.rtsp_announcer.diagnostics import (
    async_get_config_entry_diagnostics,
)

from .common import add_entry, announce, ffmpeg_children, make_tone, wait_available
from .helpers.analysis import continuity, tone_segments
from .helpers.rtsp import ListenReceiver
from .screen_reader import Frame, ScreenReader, ocr

ENTITY = "media_player.hall"
RATE = 24000
pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)


def screen_options(fps: int = 5, **extra: object) -> dict[str, Any]:
    return {
        opt.VIDEO.key: True,
        opt.VIDEO_RESOLUTION.key: "640x360",
        opt.VIDEO_FPS.key: fps,
        opt.VIDEO_HISTORY.key: 3,
        **extra,
    }


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
        entry = hass.config_entries.async_entries(DOMAIN)[0]
        frame_socket = entry.runtime_data.stream.screen.feed.path
        assert frame_socket.exists()
        await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []
    # The frame socket's private folder goes with the stream.
    assert not frame_socket.parent.exists()


def corner_grey(frame: Frame) -> float:
    """Mean grey level of the top left corner, where no text is drawn."""
    return float(frame.pixels()[:40, :60].mean())


def grey_of(rgb: tuple[int, int, int]) -> float:
    red, green, blue = rgb
    return 0.299 * red + 0.587 * green + 0.114 * blue


async def display(hass: HomeAssistant, text: str, **data: Any) -> None:
    await hass.services.async_call(
        DOMAIN, "display", {"entity_id": ENTITY, "text": text, **data}, blocking=True
    )


async def test_display_action_and_background_file(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    picture = tmp_path / "pictures" / "board.png"
    picture.parent.mkdir()
    Image.new("RGB", (64, 36), (0, 0, 200)).save(picture)
    hass.config.allowlist_external_dirs = {str(picture.parent)}
    async with ScreenReader(tmp_path / "reader") as reader:
        await start(
            hass,
            reader,
            **screen_options(),
            **{
                opt.VIDEO_BACKGROUND_IMAGE.key: str(picture),
                opt.VIDEO_READER_URL.key: "rtsp://viewer:secret@10.0.0.2:8554/announce",
            },
        )
        assert corner_grey(reader.frames()[-1]) == pytest.approx(
            grey_of((0, 0, 200)), abs=6
        )
        # The text changes without a word spoken.
        count = len(reader.frames())
        await display(hass, "C3")
        await wait_frames(reader, count + 6)
        assert "C3" in await ocr(reader.frames()[-1].path)
        assert reader.onset_after(reader.frames()[count].pts) is None
        # For a while only: then it moves to the earlier calls, smaller.
        before = reader.frames()[-1].pts
        await display(hass, "C4", seconds=1.0)
        await wait_frames(reader, len(reader.frames()) + 12)
        change = reader.first_change_after(before)
        assert change is not None
        texts = [await ocr(change[1].path), await ocr(reader.frames()[-1].path)]
        assert "C4" in texts[0]
        assert texts[1].startswith("C4C3"), texts

        entry = hass.config_entries.async_entries(DOMAIN)[0]
        diagnostics = await async_get_config_entry_diagnostics(hass, entry)
        assert "secret" not in str(diagnostics)
        screen = diagnostics["screen"]
        assert screen["resolution"] == "640x360"
        assert screen["current"] is None
        assert screen["history"] == ["C4", "C3"]
        assert screen["frames_written"] > 0
        assert screen["camera_source"] == "rtsp://***:***@10.0.0.2:8554/announce"
        await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


def solid(rgb: tuple[int, int, int], kind: str) -> bytes:
    """A small picture of one colour, encoded as `kind` (PNG, JPEG)."""
    out = io.BytesIO()
    Image.new("RGB", (64, 36), rgb).save(out, format=kind)
    return out.getvalue()


RED = (200, 0, 0)
GREEN = (0, 200, 0)


async def background_follows(
    hass: HomeAssistant, tmp_path: Path, entity_id: str, turn_green: Callable[[], None]
) -> float:
    """Show the entity's red picture as the background, then turn it green.

    Returns the seconds from the change to the first frame showing it.
    """
    async with ScreenReader(tmp_path) as reader:
        await start(
            hass,
            reader,
            **screen_options(),
            **{opt.VIDEO_BACKGROUND_ENTITY.key: entity_id},
        )
        await wait_frames(reader, len(reader.frames()) + 2)
        assert corner_grey(reader.frames()[-1]) == pytest.approx(grey_of(RED), abs=6)
        loop = asyncio.get_running_loop()
        changed = loop.time()
        turn_green()
        target = grey_of(GREEN)
        async with asyncio.timeout(3):
            while not any(  # noqa: ASYNC110 - ffmpeg's log, polled
                abs(corner_grey(frame) - target) < 6 for frame in reader.frames()[-3:]
            ):
                await asyncio.sleep(0.02)
        took = loop.time() - changed
        await hass.config_entries.async_unload(
            hass.config_entries.async_entries(DOMAIN)[0].entry_id
        )
    assert ffmpeg_children() == []
    return took


class Board(ImageEntity):
    """An image entity whose picture the test changes."""

    _attr_content_type = "image/png"
    _attr_name = "Board"

    def __init__(self, hass: HomeAssistant) -> None:
        super().__init__(hass)
        self._attr_unique_id = "board"
        self.picture = b""
        self.paint(RED)

    def paint(self, rgb: tuple[int, int, int]) -> None:
        self.picture = solid(rgb, "PNG")
        self._attr_image_last_updated = dt_util.utcnow()

    async def async_image(self) -> bytes | None:
        return self.picture


@pytest.mark.skipif(
    not hasattr(image, "async_get_image"),
    reason="this Home Assistant release offers no image entity's picture",
)
async def test_background_entity_change_shows_within_a_second(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    board = Board(hass)
    setup_test_component_platform(hass, "image", [board])
    assert await async_setup_component(hass, "image", {"image": {"platform": "test"}})
    await hass.async_block_till_done()

    def turn_green() -> None:
        board.paint(GREEN)
        board.async_write_ha_state()

    assert await background_follows(hass, tmp_path, board.entity_id, turn_green) <= 1.0


class Lens(Camera):
    """A camera whose picture the test changes."""

    _attr_name = "Lens"

    def __init__(self) -> None:
        super().__init__()
        self._attr_unique_id = "lens"
        self.picture = solid(RED, "JPEG")

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        return self.picture


async def test_background_camera_shows_and_follows_its_state(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    lens = Lens()
    setup_test_component_platform(hass, "camera", [lens])
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()

    def turn_green() -> None:
        # A camera's picture is fetched again when its state changes (here its
        # access token, as Home Assistant renews it), besides every 10 s.
        lens.picture = solid(GREEN, "JPEG")
        lens.async_update_token()
        lens.async_write_ha_state()

    assert await background_follows(hass, tmp_path, lens.entity_id, turn_green) <= 2.0


async def test_screen_errors_are_translated(hass: HomeAssistant) -> None:
    async with ListenReceiver() as receiver:
        entry = add_entry(hass, receiver.url)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        # An audio-only stream: nothing to show on.
        with pytest.raises(ServiceValidationError) as err:
            await display(hass, "A1")
        assert err.value.translation_key == "screen_off"
        with pytest.raises(ServiceValidationError) as err:
            await announce(hass, message="A1", display_text="A" * 201)
        assert err.value.translation_key == "display_text_too_long"
        await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


@pytest.mark.parametrize("transport", ["fifo", "pipe"])
async def test_audio_unchanged_with_the_screen_on(
    hass: HomeAssistant, tmp_path: Path, transport: str
) -> None:
    """The audio flows in real time and a tone arrives whole, with video beside it.

    ffmpeg passes audio on once the video frame of the same moment is there, so
    with the screen on audio leaves in steps of about a frame (5 fps here):
    the bounds on gaps and rate are the audio-only test's, over a longer span.
    """
    tone = make_tone(tmp_path / "tone.wav", freq=1000, seconds=1.0)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    async with ListenReceiver(rate=RATE) as receiver:
        entry = add_entry(
            hass, receiver.url, **screen_options(), **{opt.PCM_TRANSPORT.key: transport}
        )
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        session = await receiver.wait_for_session(1, timeout=10)
        start = time.monotonic()
        await asyncio.sleep(4.5)
        settled = [a for a in session.arrivals if a[0] >= start + 0.5]
        measured = continuity(settled, RATE)
        assert measured.ratio == pytest.approx(1.0, abs=0.06), measured
        assert measured.max_gap_s < 0.3, measured

        before = receiver.total_samples
        await announce(hass, media_id=str(tone), display_text="T1")
        await receiver.wait_for_samples(receiver.total_samples + RATE // 2, timeout=5)
        segments = tone_segments(receiver.samples()[before:], RATE, 1000, max_gap_ms=40)
        assert len(segments) == 1, segments
        assert segments[0][1] - segments[0][0] == pytest.approx(1.0, abs=0.1)
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []
