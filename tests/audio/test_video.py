"""The screen's core: drawing, fonts, what is shown when, ffmpeg's arguments."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from custom_components.rtsp_announcer.audio.ffmpeg import publisher_args
from custom_components.rtsp_announcer.audio.models import (
    BYTES_PER_SAMPLE,
    StreamSettings,
    VideoSettings,
)
from custom_components.rtsp_announcer.audio.stream import _first_audible
from custom_components.rtsp_announcer.audio.transport import TransportSink
from custom_components.rtsp_announcer.audio.video import (
    Drawing,
    Fonts,
    ScreenContent,
    ScreenRenderer,
    ScreenStyle,
    VideoTrack,
    encode_jpeg,
    find_fonts,
    to_yuv420p,
)

SMALL = VideoSettings(width=64, height=36, fps=5)
RATE = 8000


def test_audio_only_arguments_are_unchanged() -> None:
    settings = StreamSettings(url="rtsp://h:8554/a")
    audio_only = publisher_args("ffmpeg", settings, "pipe:0")
    # Video settings without a frame input, or no video settings: the same.
    with_video = StreamSettings(url="rtsp://h:8554/a", video=SMALL)
    assert publisher_args("ffmpeg", with_video, "pipe:0") == audio_only
    assert audio_only[audio_only.index("pipe:0") + 1 : audio_only.index("-c:a")] == [
        "-vn"
    ]


def test_video_arguments() -> None:
    settings = StreamSettings(url="rtsp://h:8554/a", video=SMALL)
    argv = publisher_args("ffmpeg", settings, "unix:/a.sock", "unix:/v.sock")
    second = argv.index("unix:/v.sock")
    assert argv[second - 1] == "-i"
    assert argv[argv.index("-video_size") + 1] == "64x36"
    assert argv[argv.index("-framerate") + 1] == "5"
    assert argv[argv.index("-pix_fmt") + 1] == "yuv420p"
    assert argv[argv.index("-c:v") + 1] == "libx264"
    # A keyframe every second.
    assert argv[argv.index("-g") + 1] == "5"
    assert argv[argv.index("-bf") + 1] == "0"
    assert "-vn" not in argv
    assert argv[-1] == "rtsp://h:8554/a"


def test_find_fonts_prefers_what_exists(tmp_path: Path) -> None:
    latin = tmp_path / "latin.ttf"
    latin.write_bytes(b"")
    assert find_fonts([str(tmp_path / "no.ttf"), str(latin)], []) == Fonts(
        latin=str(latin), cjk=None
    )
    assert find_fonts([], []) == Fonts(latin=None, cjk=None)


def test_yuv420p_planes() -> None:
    picture = Image.new("RGB", (4, 2), (255, 255, 255))
    frame = to_yuv420p(picture)
    assert len(frame) == 4 * 2 * 3 // 2
    # White is luma 235 and neutral chroma in the limited range.
    assert list(frame[:8]) == [235] * 8
    assert list(frame[8:]) == [128] * 4


def test_renderer_draws_text_and_history_with_any_fonts() -> None:
    video = VideoSettings(width=320, height=180, fps=1)
    for fonts in (find_fonts(), Fonts(latin=None, cjk=None)):
        renderer = ScreenRenderer(video, ScreenStyle(history=2), fonts)
        empty = np.asarray(renderer.image(ScreenContent()))
        assert not empty.any()
        shown = np.asarray(
            renderer.image(
                ScreenContent("A042 请到三号窗口\nline two", ("A041", "A040"))
            )
        )
        # The text is drawn, in the upper part and in the history strip.
        assert shown[: 180 * 2 // 3].any()
        assert shown[180 * 2 // 3 + 5 :].any()
        assert len(renderer.render(ScreenContent("A1"))) == video.frame_bytes


def test_background_picture_fills_the_frame() -> None:
    renderer = ScreenRenderer(SMALL, ScreenStyle(), Fonts(latin=None, cjk=None))
    out = io.BytesIO()
    Image.new("RGB", (10, 40), (0, 0, 200)).save(out, format="PNG")
    renderer.set_background(out.getvalue())
    picture = renderer.image(ScreenContent())
    assert picture.size == (64, 36)
    assert picture.getpixel((0, 0)) == (0, 0, 200)
    renderer.set_background(None)
    assert renderer.image(ScreenContent()).getpixel((0, 0)) == (0, 0, 0)
    with pytest.raises(UnidentifiedImageError):
        renderer.set_background(b"not a picture")


def test_first_audible_sample() -> None:
    assert _first_audible(bytes(8)) is None
    assert _first_audible(b"\x00\x00\x00\x00\x01\x00") == 2
    assert _first_audible(b"\x00\x01") == 0


class _Writes(TransportSink):
    """A sink that keeps what is written (stands for ffmpeg's frame socket)."""

    def __init__(self) -> None:
        super().__init__(max_buffer_bytes=1 << 30)
        self.frames: list[bytes] = []

    @property
    def connected(self) -> bool:
        return True

    def can_accept(self, nbytes: int) -> bool:
        return True

    def write(self, frame: bytes) -> None:
        self.frames.append(frame)


async def _track(history: int = 3) -> tuple[VideoTrack, _Writes, _Writes]:
    audio = _Writes()
    track = VideoTrack(
        SMALL,
        sample_rate=RATE,
        audio=audio,
        style=ScreenStyle(history=history),
        fonts=Fonts(latin=None, cjk=None),
    )
    frames = _Writes()
    track.sink = frames
    track._running = True
    audio.on_write = track._pump
    track._request(ScreenContent())
    await _settle(track)
    return track, audio, frames


async def _settle(track: VideoTrack) -> None:
    for _ in range(100):
        if track._rendering is None and not track._render_queue:
            return
        await asyncio.sleep(0.01)


def _write_audio(audio: _Writes, seconds: float) -> None:
    for _ in range(round(seconds * 50)):
        audio.total_bytes += RATE // 50 * BYTES_PER_SAMPLE
        assert audio.on_write is not None
        audio.on_write()


async def test_frames_follow_the_audio_and_changes_land_on_the_nearest_frame() -> None:
    track, audio, frames = await _track()
    _write_audio(audio, 1.0)
    # Frame k is written once the audio reaches half a frame past it.
    assert len(frames.frames) == 5
    blank = frames.frames[-1]
    # A text whose audio starts 0.55 s in lands on frame 3 (0.6 s), the
    # nearest; one at 0.65 s would also (up to 0.7 s).
    track.show("A1", at=round(1.55 * RATE))
    await _settle(track)
    _write_audio(audio, 1.0)
    await _settle(track)
    _write_audio(audio, 0.02)
    written = frames.frames
    assert written[7] == blank
    assert written[8] != blank
    assert track.content == ScreenContent("A1", ())


async def test_show_for_a_while_then_history() -> None:
    track, audio, frames = await _track(history=1)
    track.show("A1")
    track.show("A2", seconds=0.2)
    assert track.content == ScreenContent(None, ("A2",))
    # A change placed before pending ones replaces them.
    track.show("A3", at=0)
    assert track.content == ScreenContent("A3", ("A2",))
    await _settle(track)
    _write_audio(audio, 0.5)
    assert frames.frames


async def test_picture_is_the_latest_frame_written() -> None:
    track, audio, frames = await _track()
    _write_audio(audio, 0.5)
    # A text placed for audio still to come is not on the picture yet.
    track.show("A1", at=round(1.0 * RATE))
    await _settle(track)
    assert to_yuv420p(await track.picture()) == frames.frames[-1]
    blank = frames.frames[-1]
    _write_audio(audio, 1.0)
    picture = await track.picture()
    assert to_yuv420p(picture) == frames.frames[-1] != blank
    # The same picture again: nothing is drawn for it.
    renders = track.renders
    assert await track.picture() is picture
    assert track.renders == renders


async def test_picture_waits_for_its_drawing_and_draws_it_once() -> None:
    track, _, _ = await _track()
    gate = asyncio.Event()

    async def gated(job: Callable[[], Drawing]) -> Drawing:
        await gate.wait()
        return job()

    # Drawings wait for the gate: the callers below find theirs under way.
    track._run = lambda job: asyncio.ensure_future(gated(job))
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 200)).save(out, format="PNG")
    # A new background: the picture shown is drawn again, once for all callers.
    await track.set_background(out.getvalue())
    renders = track.renders
    callers = [asyncio.ensure_future(track.picture()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(caller.done() for caller in callers)
    # One gives up (a camera request's time limit): the others still get it.
    callers[0].cancel()
    gate.set()
    first, second = await asyncio.gather(*callers[1:])
    assert first is second
    assert first.getpixel((0, 0)) == (0, 0, 200)
    assert track.renders == renders + 1


async def test_picture_of_a_stopped_track_and_a_failed_drawing() -> None:
    stopped = VideoTrack(
        SMALL, sample_rate=RATE, audio=_Writes(), fonts=Fonts(latin=None, cjk=None)
    )
    # Never started: drawn on the spot.
    assert (await stopped.picture()).size == (64, 36)

    track, _, _ = await _track()
    track._frame_cache.clear()

    def broken(content: ScreenContent) -> None:
        raise OSError("no font")

    track.renderer.draw = broken  # type: ignore[assignment,method-assign]
    with pytest.raises(OSError, match="no font"):
        await track.picture()


def test_jpeg_fits_the_size_asked_and_is_never_enlarged() -> None:
    picture = Image.new("RGB", (64, 36), (200, 0, 0))

    def size(width: int | None, height: int | None) -> tuple[int, int]:
        with Image.open(io.BytesIO(encode_jpeg(picture, width, height))) as jpeg:
            assert jpeg.format == "JPEG"
            return jpeg.size

    assert size(None, None) == (64, 36)
    assert size(32, None) == (32, 18)
    assert size(None, 9) == (16, 9)
    # Proportions kept: the tighter of the two wins.
    assert size(32, 9) == (16, 9)
    assert size(640, 360) == (64, 36)
    assert size(0, 0) == (64, 36)
