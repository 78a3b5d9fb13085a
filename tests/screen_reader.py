"""A real RTSP reader of both tracks: ffmpeg's RTSP listener, decoding audio and video.

The publisher connects to ffmpeg's listen mode over TCP (with its RTCP sender
reports, which tie the two tracks to one clock: a relay that drops them, like
rtsp-server-perl, leaves a reader no way to line the tracks up). The reader
writes the decoded audio as s16le mono and every decoded frame as a grey PGM
picture, and logs the timestamp of each (ffmpeg's `ashowinfo` and `showinfo`
filters), so that a picture and a sound can be compared on the reader's own
time line.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
from PIL import Image

from tests.helpers.rtsp import dies_with_parent, end_process, free_port

RATE = 24000
_VIDEO_LINE = re.compile(
    r"Parsed_showinfo.* n: *(\d+) pts: *-?\d+ pts_time:(-?[0-9.e+-]+).*iskey:(\d)"
)
_AUDIO_LINE = re.compile(r"ashowinfo.* pts_time:(-?[0-9.e+-]+) .*nb_samples:(\d+)")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture: its time at the reader, and whether it is a keyframe."""

    index: int
    pts: float
    key: bool
    path: Path

    def pixels(self) -> np.ndarray:
        with Image.open(self.path) as image:
            return np.asarray(image, dtype=np.float32)


class ScreenReader:
    """Receives one publisher's session and records both tracks to `directory`."""

    def __init__(self, directory: Path, *, rate: int = RATE) -> None:
        self.directory = directory
        self.rate = rate
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/announce"
        self.lines: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self.runs = 0

    def _argv(self, run: Path) -> list[str]:
        return [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info",
            "-rtsp_flags", "listen", "-listen_timeout", "30",
            "-fflags", "nobuffer", "-flags", "low_delay",
            "-probesize", "32", "-analyzeduration", "0",
            "-i", self.url,
            "-map", "0:a", "-af", "ashowinfo",
            "-f", "s16le", "-ac", "1", "-ar", str(self.rate), "-flush_packets", "1",
            str(run / "audio.raw"),
            "-map", "0:v", "-vf", "showinfo", "-fps_mode", "passthrough",
            "-pix_fmt", "gray", "-f", "image2", str(run / "f%05d.pgm"),
        ]  # fmt: skip

    @property
    def run_dir(self) -> Path:
        return self.directory / f"run{self.runs}"

    async def start(self) -> None:
        """Listen for the publisher (a new run, in a new folder)."""
        self.runs += 1
        self.lines = []
        run = self.run_dir
        run.mkdir(parents=True)
        self._process = await asyncio.create_subprocess_exec(
            *dies_with_parent(self._argv(run)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._drain = asyncio.create_task(self._read(self._process))
        # Listening once the port is bound; ffmpeg takes ~0.1 s to get there.
        for _ in range(200):
            if _listening(self.port):
                return
            await asyncio.sleep(0.01)
        msg = f"the reader did not listen: {self.lines[-10:]}"
        raise RuntimeError(msg)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """End the run: SIGTERM (ffmpeg finishes its files), then SIGKILL."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            await end_process(process, term_wait_s=2.0)
        finally:
            if self._drain is not None:
                await self._drain

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ analysis

    def stream_kinds(self) -> list[str]:
        """The kinds of the session's streams, as ffmpeg probed them."""
        kinds: list[str] = []
        for line in self.lines:
            if line.startswith("Output #"):
                break
            match = re.match(r"\s*Stream #0:\d+.*?: (Audio|Video): (\w+)", line)
            if match:
                kinds.append(f"{match[1].lower()}:{match[2]}")
        return kinds

    def frames(self) -> list[Frame]:
        """Every decoded picture so far (whose file is complete)."""
        found: list[Frame] = []
        for line in self.lines:
            match = _VIDEO_LINE.search(line)
            if match:
                index = int(match[1])
                found.append(
                    Frame(
                        index,
                        float(match[2]),
                        match[3] == "1",
                        self.run_dir / f"f{index + 1:05d}.pgm",
                    )
                )
        # The newest picture may still be written.
        return [frame for frame in found[:-1] if frame.path.exists()]

    def audio(self) -> tuple[np.ndarray, list[tuple[int, float]]]:
        """The decoded audio, and (first sample, time) of each decoded block."""
        pcm = np.fromfile(self.run_dir / "audio.raw", dtype="<i2").astype(np.float32)
        blocks: list[tuple[int, float]] = []
        first = 0
        for line in self.lines:
            match = _AUDIO_LINE.search(line)
            if match:
                blocks.append((first, float(match[1])))
                first += int(match[2])
        return pcm, blocks

    def onset_after(self, after: float, threshold: float = 64.0) -> float | None:
        """Reader time of the first sound at or after time `after`."""
        pcm, blocks = self.audio()
        for (first, pts), following in zip(
            blocks, [*blocks[1:], (len(pcm), 0.0)], strict=True
        ):
            if pts + (following[0] - first) / self.rate < after:
                continue
            chunk = np.abs(pcm[first : following[0]])
            loud = np.flatnonzero(chunk > threshold)
            for index in loud:
                at = pts + index / self.rate
                if at >= after:
                    return float(at)
        return None

    def first_change_after(
        self, after: float, min_diff: float = 2.0
    ) -> tuple[Frame, Frame] | None:
        """The first picture after time `after` that differs from the one before."""
        frames = self.frames()
        previous: Frame | None = None
        previous_pixels: np.ndarray | None = None
        for frame in frames:
            if frame.pts < after:
                previous = frame
                previous_pixels = None
                continue
            pixels = frame.pixels()
            if previous is not None:
                if previous_pixels is None:
                    previous_pixels = previous.pixels()
                if float(np.abs(pixels - previous_pixels).mean()) > min_diff:
                    return previous, frame
            previous, previous_pixels = frame, pixels
        return None


def _listening(port: int) -> bool:
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path("/proc/net", name).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    return True
    return False


async def ocr(path: Path, language: str = "eng") -> str:
    """The text tesseract reads in a picture (upper case, no white space)."""
    tesseract = shutil.which("tesseract")
    assert tesseract is not None, "tesseract-ocr is not installed (scripts/setup)"
    process = await asyncio.create_subprocess_exec(
        tesseract, str(path), "stdout", "-l", language, "--psm", "6",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    return re.sub(r"\s+", "", out.decode(errors="replace")).upper()
