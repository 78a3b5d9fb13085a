"""The call-number screen: an H.264 track of the stream showing what is announced.

Frames are drawn with Pillow only when what is shown changes, off the event
loop, and converted once to raw yuv420p. The same bytes are then written to
ffmpeg's second input at the stream's frame rate, paced by the audio: frame k
is written once the audio written to this ffmpeg reaches half a frame past
k / fps. ffmpeg timestamps raw frames by their index and raw audio by its
sample count, both from their first byte, so both tracks share one time line
without any wall clock in between. A change of text is placed on that time
line at the first audible sample of its announcement, and shows from the
frame nearest to it (at most half a frame away).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from .models import BYTES_PER_SAMPLE, VideoSettings
from .transport import TransportSink, UnixSocketFeed

_LOGGER = logging.getLogger(__name__)

RESOLUTIONS: Final = ((640, 360), (1280, 720), (1920, 1080))
MIN_FPS: Final = 1
MAX_FPS: Final = 10
MAX_HISTORY: Final = 10
# Seconds of frames that may wait for a slow ffmpeg before writing pauses
# (no frame is ever dropped: a dropped raw frame would shift every later one).
_VIDEO_BUFFER_SECONDS: Final = 1.0

# Fonts with Chinese characters, best first: Debian/Ubuntu (fonts-noto-cjk,
# fonts-wqy-zenhei, fonts-wqy-microhei, fonts-droid-fallback), then Alpine
# (Home Assistant OS and the container image: font-noto-cjk, font-wqy-zenhei).
CJK_FONTS: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
)
# Latin only, when no font above is installed.
LATIN_FONTS: Final = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/ttf-dejavu/DejaVuSans-Bold.ttf",
)

type Rgb = tuple[int, int, int]
type _Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _first_file(paths: Sequence[str]) -> str | None:
    return next((path for path in paths if Path(path).is_file()), None)


def find_fonts(
    latin: Sequence[str] = LATIN_FONTS, cjk: Sequence[str] = CJK_FONTS
) -> Fonts:
    """Return the font files installed: one for Latin text, one for Chinese."""
    return Fonts(latin=_first_file(latin), cjk=_first_file(cjk))


@dataclass(frozen=True, slots=True)
class Fonts:
    """Font files: Latin letters and digits from one, Chinese from the other.

    Two, because the CJK fonts' own Latin glyphs are often poor on a call
    screen (WenQuanYi's zero carries a dot that reads as a Q).
    """

    latin: str | None
    cjk: str | None


# From the CJK radicals on: punctuation, kana, ideographs, full-width forms.
_CJK_FROM: Final = 0x2E80


def _is_cjk(char: str) -> bool:
    return ord(char) >= _CJK_FROM


@dataclass(frozen=True, slots=True, kw_only=True)
class ScreenStyle:
    """How the screen looks."""

    background: Rgb = (0, 0, 0)
    text_color: Rgb = (255, 255, 255)
    # Height of the current text's font, in percent of the picture's height.
    text_size: int = 30
    history: int = 3


@dataclass(frozen=True, slots=True)
class ScreenContent:
    """What the screen shows: the current text and the ones before it."""

    current: str | None = None
    history: tuple[str, ...] = ()


class ScreenRenderer:
    """Draws a `ScreenContent` into one raw yuv420p frame (run off the loop)."""

    def __init__(self, video: VideoSettings, style: ScreenStyle, fonts: Fonts) -> None:
        """Prepare a renderer; fonts are loaded on first use, per size."""
        self.video = video
        self.style = style
        self.fonts = fonts
        self._loaded: dict[tuple[str | None, int], _Font] = {}
        self.background: Image.Image | None = None

    def set_background(self, data: bytes | None) -> None:
        """Use an encoded image (PNG, JPEG…) as background; None: the colour.

        Raises:
            OSError: the data is not an image Pillow can read.
        """
        self.background = decode_background(self.video, data)

    def _font(self, path: str | None, size: int) -> _Font:
        size = max(size, 8)
        key = (path, size)
        font = self._loaded.get(key)
        if font is None:
            if path is not None:
                font = ImageFont.truetype(path, size)
            else:
                font = ImageFont.load_default(size)
            self._loaded[key] = font
        return font

    def _runs(self, line: str, size: int) -> list[tuple[str, _Font]]:
        """Split a line into runs of one font each."""
        latin = self.fonts.latin or self.fonts.cjk
        cjk = self.fonts.cjk or self.fonts.latin
        runs: list[tuple[str, _Font]] = []
        current: list[str] = []
        current_path: str | None = None
        for char in line:
            path = cjk if _is_cjk(char) else latin
            if current and path != current_path:
                runs.append(("".join(current), self._font(current_path, size)))
                current = []
            current.append(char)
            current_path = path
        if current:
            runs.append(("".join(current), self._font(current_path, size)))
        return runs

    def image(self, content: ScreenContent) -> Image.Image:
        """Draw the content as an RGB picture."""
        width, height = self.video.width, self.video.height
        style = self.style
        if self.background is not None:
            picture = self.background.copy()
        else:
            picture = Image.new("RGB", (width, height), style.background)
        draw = ImageDraw.Draw(picture)
        history = content.history[: style.history]
        main_bottom = height if not history else int(height * 0.68)
        if content.current:
            self._fit_text(
                draw,
                content.current,
                (width // 2, main_bottom // 2),
                max_width=int(width * 0.92),
                max_height=int(main_bottom * 0.9),
                size=int(height * style.text_size / 100),
            )
        if history:
            self._draw_history(draw, history, main_bottom)
        return picture

    def _fit_text(
        self,
        draw: ImageDraw.ImageDraw,
        text: str,
        centre: tuple[int, int],
        *,
        max_width: int,
        max_height: int,
        size: int,
    ) -> None:
        width, height = self._measure(text, size)
        if width > max_width or height > max_height:
            scale = min(max_width / max(width, 1), max_height / max(height, 1))
            size = max(int(size * scale), 8)
            width, height = self._measure(text, size)
        lines = text.split("\n")
        line_height = height / len(lines)
        top = centre[1] - height / 2
        for number, line in enumerate(lines):
            runs = self._runs(line, size)
            x = centre[0] - sum(font.getlength(part) for part, font in runs) / 2
            # Every run on one baseline, the line centred on its own height.
            y = top + line_height * number + line_height / 2 + size * 0.35
            for part, font in runs:
                draw.text(
                    (x, y), part, font=font, fill=self.style.text_color, anchor="ls"
                )
                x += font.getlength(part)

    def _measure(self, text: str, size: int) -> tuple[float, float]:
        lines = text.split("\n")
        width = max(
            sum(font.getlength(part) for part, font in self._runs(line, size))
            for line in lines
        )
        return width, size * 1.2 * len(lines)

    def _draw_history(
        self, draw: ImageDraw.ImageDraw, history: tuple[str, ...], top: int
    ) -> None:
        width, height = self.video.width, self.video.height
        colour = self.style.text_color
        draw.line(
            [(int(width * 0.04), top), (int(width * 0.96), top)],
            fill=colour,
            width=max(height // 180, 1),
        )
        columns = min(len(history), 5)
        rows = math.ceil(len(history) / columns)
        cell_width = width // columns
        cell_height = (height - top) // rows
        for index, text in enumerate(history):
            row, column = divmod(index, columns)
            centre = (
                cell_width * column + cell_width // 2,
                top + cell_height * row + cell_height // 2,
            )
            self._fit_text(
                draw,
                text,
                centre,
                max_width=int(cell_width * 0.9),
                max_height=int(cell_height * 0.8),
                size=int(cell_height * 0.55),
            )

    def render(self, content: ScreenContent) -> bytes:
        """Draw the content as one raw yuv420p frame (BT.601, limited range)."""
        return self.draw(content).frame

    def draw(self, content: ScreenContent) -> Drawing:
        """Draw the content: the picture, and the frame ffmpeg is given of it."""
        picture = self.image(content)
        return Drawing(picture=picture, frame=to_yuv420p(picture))


@dataclass(frozen=True, slots=True, kw_only=True)
class Drawing:
    """One content drawn: its RGB picture (never changed) and its raw frame."""

    picture: Image.Image
    frame: bytes


# Quality of the screen's JPEG pictures: the text stays sharp and a picture
# small (measured: ~50 kB at 1280x720 with a call and three earlier ones).
JPEG_QUALITY: Final = 85


def encode_jpeg(
    picture: Image.Image, width: int | None = None, height: int | None = None
) -> bytes:
    """The picture as JPEG, made smaller to fit `width` x `height` if asked.

    The proportions are kept and a picture is never enlarged: a larger
    picture would show nothing more. Run it off the event loop.
    """
    scale = min(
        1.0,
        width / picture.width if width and width > 0 else 1.0,
        height / picture.height if height and height > 0 else 1.0,
    )
    if scale < 1.0:
        picture = picture.resize(
            (
                max(round(picture.width * scale), 1),
                max(round(picture.height * scale), 1),
            ),
            Image.Resampling.BILINEAR,
        )
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def decode_background(video: VideoSettings, data: bytes | None) -> Image.Image | None:
    """Decode a picture and fit it to the frame (None stays None).

    Raises:
        OSError: the data is not an image Pillow can read.
    """
    if data is None:
        return None
    with Image.open(io.BytesIO(data)) as image:
        picture = image.convert("RGB")
    return _cover(picture, video.width, video.height)


def _cover(picture: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and crop a picture to fill the frame, keeping its proportions."""
    scale = max(width / picture.width, height / picture.height)
    size = (
        max(round(picture.width * scale), width),
        max(round(picture.height * scale), height),
    )
    scaled = picture.resize(size, Image.Resampling.BILINEAR)
    left = (scaled.width - width) // 2
    top = (scaled.height - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def to_yuv420p(picture: Image.Image) -> bytes:
    """Convert an RGB picture to planar yuv420p, as ffmpeg's rawvideo reads it."""
    rgb = np.asarray(picture, dtype=np.float32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 16 + 0.2568 * red + 0.5041 * green + 0.0979 * blue
    blue_diff = 128 - 0.1482 * red - 0.2910 * green + 0.4392 * blue
    red_diff = 128 + 0.4392 * red - 0.3678 * green - 0.0714 * blue
    height, width = luma.shape

    def half(plane: NDArray[np.float32]) -> NDArray[np.float32]:
        quads = plane.reshape(height // 2, 2, width // 2, 2)
        mean: NDArray[np.float32] = quads.mean(axis=(1, 3), dtype=np.float32)
        return mean

    planes = (luma, half(blue_diff), half(red_diff))
    return b"".join(
        np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes() for plane in planes
    )


@dataclass(order=True, slots=True)
class _Change:
    """What the screen shows from a position of the audio on."""

    at: int
    content: ScreenContent = field(compare=False)


type Runner = Callable[[Callable[[], Drawing]], asyncio.Future[Drawing]]


class VideoTrack:
    """Feeds ffmpeg's video input: the frame of the moment, paced by the audio."""

    def __init__(
        self,
        video: VideoSettings,
        *,
        sample_rate: int,
        audio: TransportSink,
        style: ScreenStyle | None = None,
        fonts: Fonts | None = None,
        run: Runner | None = None,
    ) -> None:
        """Prepare the track; `start()` opens the socket ffmpeg reads frames from.

        `audio` is the stream's PCM sink: each frame is written when enough
        audio has been written to the same ffmpeg. `run` runs a rendering off
        the event loop (default: the loop's default executor).
        """
        loop = asyncio.get_running_loop()
        self.video = video
        self._rate = sample_rate
        self._audio = audio
        self.fonts = fonts or find_fonts()
        self.renderer = ScreenRenderer(video, style or ScreenStyle(), self.fonts)
        self._run: Runner = run or (lambda job: loop.run_in_executor(None, job))
        self.sink = TransportSink(
            max_buffer_bytes=video.frame_bytes
            * (math.ceil(video.fps * _VIDEO_BUFFER_SECONDS) + 1)
        )
        self.feed = UnixSocketFeed(self.sink, sndbuf=video.frame_bytes)
        self._frames = 0
        self._shown = ScreenContent()
        # The content of the latest change placed, and where it lies.
        self._latest = ScreenContent()
        self._changes: deque[_Change] = deque()
        self._frame_cache: dict[ScreenContent, Drawing] = {}
        self._rendering: asyncio.Future[Drawing] | None = None
        # What is being drawn, and for which style (generation).
        self._drawing: tuple[int, ScreenContent] | None = None
        # Callers of `picture()` waiting for a drawing to end.
        self._waiters: list[asyncio.Future[None]] = []
        self._render_queue: list[ScreenContent] = []
        self._generation = 0
        self.frames_written = 0
        self.renders = 0
        self.render_seconds = 0.0
        self._running = False

    @property
    def input_spec(self) -> str:
        """Ffmpeg's name for the frame socket."""
        return self.feed.input_spec

    @property
    def content(self) -> ScreenContent:
        """What the latest change shows (perhaps not yet on screen)."""
        return self._latest

    async def start(self) -> None:
        """Create the frame socket and draw the first (empty) picture.

        Raises:
            TransportError: the socket cannot be created.
        """
        if self.fonts.cjk is None:
            _LOGGER.warning(
                "No font with Chinese characters found (%s); Chinese text on the"
                " screen shows as boxes. Install fonts-noto-cjk or fonts-wqy-zenhei"
                " (Debian, Ubuntu) or font-noto-cjk (Alpine: Home Assistant OS and"
                " the container image have no such font)",
                "Latin text uses " + self.fonts.latin
                if self.fonts.latin
                else "no font at all: Latin text uses Pillow's built-in one",
            )
        await self.feed.start()
        self._running = True
        self.sink.on_attach = self._video_attached
        self._audio.on_write = self._pump
        self._request(self._shown)

    async def stop(self) -> None:
        """Stop feeding and remove the socket; waits for a rendering under way."""
        self._running = False
        if self._audio.on_write == self._pump:
            self._audio.on_write = None
        self.sink.on_attach = None
        rendering = self._rendering
        if rendering is not None:
            await asyncio.gather(rendering, return_exceptions=True)
        # Nothing is drawn for them any more: `picture()` draws by itself.
        self._wake(None)
        await self.feed.stop()
        self.sink.detach()

    async def picture(self) -> Image.Image:
        """The picture of what the screen shows now, as the latest frame shows it.

        A text placed for an announcement still to be heard is not on it yet.
        Drawn first when it is not (the first picture, a new background); a
        failed drawing raises its error.
        """
        loop = asyncio.get_running_loop()
        while (drawing := self._frame_cache.get(self._shown)) is None:
            if not self._running:
                job = partial(self.renderer.draw, self._shown)
                return (await self._run(job)).picture
            # Drawn by the track's own queue: one drawing at a time shares the
            # fonts, and the frames written use the same drawing.
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            self._request(self._shown)
            await waiter
        return drawing.picture

    # ------------------------------------------------------------------ content

    def _position(self) -> int:
        """The audio position (in samples over all connections) written so far."""
        return self._audio.total_bytes // BYTES_PER_SAMPLE

    def show(
        self,
        text: str | None,
        *,
        seconds: float | None = None,
        at: int | None = None,
    ) -> None:
        """Show `text` from audio position `at` (default: what is written now).

        The text shown before moves to the head of the history. With `seconds`
        the text leaves the screen (to the history) that long after.
        """
        at = self._position() if at is None else at
        # A change placed before others that are still to come replaces them:
        # what was to expire or follow belongs to what this one ends. One at
        # the same position follows it (two texts within one audio frame).
        while self._changes and self._changes[-1].at > at:
            self._changes.pop()
        base = self._changes[-1].content if self._changes else self._shown
        content = _advance(base, text, self.renderer.style.history)
        self._place(at, content)
        if seconds is not None and text:
            expiry = at + round(seconds * self._rate)
            self._place(expiry, _advance(content, None, self.renderer.style.history))
        self._pump()

    async def set_background(self, data: bytes | None) -> None:
        """Use an encoded image as background (None: the style's colour).

        Raises:
            OSError: the data is not an image.
        """
        loop = asyncio.get_running_loop()
        # Decoded and scaled off the loop; a drawing under way keeps the
        # picture it started with, and its frame is dropped (_restyle).
        self.renderer.background = await loop.run_in_executor(
            None, decode_background, self.video, data
        )
        self._restyle()

    def _restyle(self) -> None:
        self._generation += 1
        self._frame_cache.clear()
        self._render_queue.clear()
        self._request(self._latest)
        self._pump()

    def _place(self, at: int, content: ScreenContent) -> None:
        self._changes.append(_Change(at, content))
        self._latest = content
        self._request(content)

    # ------------------------------------------------------------------ frames

    def _request(self, content: ScreenContent) -> None:
        if (
            content in self._frame_cache
            or content in self._render_queue
            or self._drawing == (self._generation, content)
        ):
            return
        self._render_queue.append(content)
        self._render_next()

    def _render_next(self) -> None:
        if self._rendering is not None or not self._render_queue or not self._running:
            return
        content = self._render_queue.pop(0)
        generation = self._generation
        renderer = self.renderer
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._drawing = (generation, content)
        self._rendering = self._run(lambda: renderer.draw(content))

        def done(future: asyncio.Future[Drawing]) -> None:
            self._rendering = None
            self._drawing = None
            self.render_seconds += loop.time() - started
            if future.cancelled():
                self._wake(None)
                return
            if (err := future.exception()) is not None:
                _LOGGER.error("Drawing the screen failed", exc_info=err)
            elif generation == self._generation:
                self.renders += 1
                self._frame_cache[content] = future.result()
                self._trim_cache()
            self._wake(err)
            self._render_next()
            self._pump()

        self._rendering.add_done_callback(done)

    def _wake(self, err: BaseException | None) -> None:
        """End the waits of `picture()` callers: they look again, or fail."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if err is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(err)

    def _trim_cache(self) -> None:
        wanted = {self._shown, self._latest, *(c.content for c in self._changes)}
        for content in list(self._frame_cache):
            if content not in wanted:
                del self._frame_cache[content]

    def _video_attached(self) -> None:
        # A new ffmpeg: its video time zero is its audio time zero.
        self._frames = 0

    def _pump(self) -> None:
        """Write every frame the audio written to this ffmpeg has made due."""
        if not self._running or not self.sink.connected:
            return
        audio = self._audio
        if not audio.connected:
            return
        origin = audio.attached_bytes // BYTES_PER_SAMPLE
        written = audio.total_bytes // BYTES_PER_SAMPLE - origin
        per_frame = self._rate / self.video.fps
        while True:
            # Frame k shows what is heard from half a frame before k / fps to
            # half a frame after: a change lands on the frame nearest to it.
            edge = (self._frames + 0.5) * per_frame
            if written < edge:
                return
            content = self._content_until(origin + math.floor(edge))
            drawing = self._frame_cache.get(content)
            if drawing is None:
                # Drawn off the loop; the frame waits for it (ffmpeg holds
                # the audio for the video's timestamps meanwhile).
                self._request(content)
                return
            if not self.sink.can_accept(len(drawing.frame)):
                return
            self.sink.write(drawing.frame)
            self._frames += 1
            self.frames_written += 1

    def _content_until(self, at: int) -> ScreenContent:
        changes = self._changes
        while changes and changes[0].at < at:
            self._shown = changes.popleft().content
        return self._shown


def _advance(base: ScreenContent, text: str | None, keep: int) -> ScreenContent:
    """The content after `text` replaces the current one (None: nothing shown)."""
    history = base.history
    if base.current:
        history = (base.current, *history)
    return ScreenContent(current=text or None, history=history[: max(keep, 0)])
