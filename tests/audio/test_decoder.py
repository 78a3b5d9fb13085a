"""Decoding one media item to PCM with the real ffmpeg.

Only what a test is about is fake: a binary that is missing or dies silently,
or an audio source (another TTS engine) that fails, hangs or never ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import struct
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import psutil
import pytest

from custom_components.rtsp_announcer.audio.decoder import (
    CHUNK_BYTES,
    decode_to,
)
from custom_components.rtsp_announcer.audio.exceptions import DecodeError
from custom_components.rtsp_announcer.audio.ffmpeg import (
    LOCAL_PROTOCOLS,
    PIPE_PROTOCOLS,
    REMOTE_PROTOCOLS,
    SourceKind,
    decoder_args,
    source_kind,
)
from custom_components.rtsp_announcer.audio.playback import ItemState, PlaybackItem
from tests.helpers.analysis import dominant_frequency
from tests.helpers.waiting import until

RATE = 16000
TONE_HZ = 440
# Generous: ffmpeg starts in ~50 ms, but the machine may be busy.
DEADLINE_S = 10.0


def wav_bytes(
    seconds: float, *, rate: int = 44100, channels: int = 2, freq: int = TONE_HZ
) -> bytes:
    """A sine tone as a WAV file, written without ffmpeg."""
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(tone, channels).tobytes())
    return buffer.getvalue()


def wav_header(data_bytes: int, *, rate: int = RATE) -> bytes:
    """The 44-byte header of a mono s16le WAV whose data is `data_bytes` long."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


async def chunks_of(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    """Encoded audio arriving piecewise, as from a streaming TTS engine."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


class Collector:
    """A consumer of decoded PCM that may stop after some chunks."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.pcm = bytearray()
        self.calls = 0
        self._stop_after = stop_after

    async def __call__(self, data: bytes) -> bool:
        self.pcm += data
        self.calls += 1
        return self._stop_after is None or self.calls < self._stop_after


def decoders() -> list[psutil.Process]:
    """Decoder processes of this test run that are still alive."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if (
                "-protocol_whitelist" in child.cmdline()
                and child.status() != psutil.STATUS_ZOMBIE
            ):
                alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return alive


def reading_paused(process: asyncio.subprocess.Process) -> bool:
    """Whether asyncio stopped reading the process's stdout (its buffer is full)."""
    return bool(getattr(process.stdout, "_paused", False))


def drain(item: PlaybackItem) -> bytes:
    """Everything an ended item holds (the last frame padded with silence)."""
    frames = []
    while (frame := item.take(RATE // 50 * 2)) is not None:
        frames.append(frame)
    return b"".join(frames)


async def decode(
    source: str | AsyncIterator[bytes], *, binary: str = "ffmpeg"
) -> PlaybackItem:
    item = PlaybackItem(sample_rate=RATE)
    async with asyncio.timeout(DEADLINE_S):
        produced = await decode_to(
            item.feed, source, binary=binary, sample_rate=RATE, item=item
        )
    if produced is not None:
        item.end()
    return item


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    path.write_bytes(wav_bytes(1.0))
    return path


async def test_a_file_becomes_mono_pcm_at_the_stream_rate(tone: Path) -> None:
    item = await decode(str(tone))
    assert item.error is None
    samples = np.frombuffer(drain(item), dtype="<i2")
    assert item.exhausted
    # 44.1 kHz stereo in, one second of 16 kHz mono out (the last frame padded).
    assert RATE <= samples.size < RATE + RATE // 50
    assert dominant_frequency(samples[:RATE], RATE) == pytest.approx(TONE_HZ, abs=1)
    assert decoders() == []


async def test_piped_chunks_decode_like_the_file(tone: Path) -> None:
    from_file = Collector()
    from_pipe = Collector()
    async with asyncio.timeout(DEADLINE_S):
        file_item = PlaybackItem(sample_rate=RATE)
        produced = await decode_to(
            from_file, str(tone), binary="ffmpeg", sample_rate=RATE, item=file_item
        )
        pipe_item = PlaybackItem(sample_rate=RATE)
        piped = await decode_to(
            from_pipe,
            chunks_of(tone.read_bytes()),
            binary="ffmpeg",
            sample_rate=RATE,
            item=pipe_item,
        )
    assert produced == len(from_file.pcm) == RATE * 2
    assert piped == produced
    assert from_pipe.pcm == from_file.pcm
    # The first samples arrive before the whole second is decoded.
    assert from_pipe.calls > 1
    assert file_item.error is None
    assert pipe_item.error is None


@pytest.mark.parametrize(
    ("make_binary", "reason"),
    [
        (lambda tmp: tmp / "no-such-ffmpeg", "No such file or directory"),
        (lambda tmp: tmp, "Permission denied"),
    ],
    ids=["missing", "a-directory"],
)
async def test_ffmpeg_that_cannot_start(
    tone: Path, tmp_path: Path, make_binary: Callable[[Path], Path], reason: str
) -> None:
    binary = str(make_binary(tmp_path))
    item = await decode(str(tone), binary=binary)
    assert item.state is ItemState.FAILED
    assert isinstance(item.error, DecodeError)
    assert str(item.error) == f"cannot start {binary}: {reason}"


async def test_a_source_failing_midway_fails_the_item(tone: Path) -> None:
    data = tone.read_bytes()

    async def breaks_halfway() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(data[: len(data) // 2]):
            yield chunk
        msg = "the engine went away"
        raise ConnectionError(msg)

    collector = Collector()
    item = PlaybackItem(sample_rate=RATE)
    async with asyncio.timeout(DEADLINE_S):
        produced = await decode_to(
            collector, breaks_halfway(), binary="ffmpeg", sample_rate=RATE, item=item
        )
    assert produced is None
    assert item.state is ItemState.FAILED
    assert str(item.error) == "the audio source failed: the engine went away"
    assert isinstance(item.error, DecodeError)
    assert isinstance(item.error.__cause__, ConnectionError)
    # What arrived before the failure was still decoded and handed on.
    assert len(collector.pcm) == pytest.approx(0.5 * RATE * 2, rel=0.05)
    assert decoders() == []


async def test_a_consumer_stopping_early_ends_ffmpeg(tone: Path) -> None:
    collector = Collector(stop_after=1)
    item = PlaybackItem(sample_rate=RATE)
    async with asyncio.timeout(DEADLINE_S):
        produced = await decode_to(
            collector, str(tone), binary="ffmpeg", sample_rate=RATE, item=item
        )
    assert produced == len(collector.pcm)
    assert 0 < produced <= CHUNK_BYTES
    assert collector.calls == 1
    # Stopping is the consumer's choice, not a failure of the media.
    assert item.state is ItemState.QUEUED
    assert item.error is None
    assert decoders() == []


# Decoding outruns playback, so on a stream the item's buffer is full and the
# decoder waits for the clock during most of a long media file. That is when a
# user stops the announcement, or the entry is unloaded.
@contextlib.asynccontextmanager
async def decoding_long_media(
    tmp_path: Path,
) -> AsyncIterator[tuple[asyncio.Task[int | None], PlaybackItem]]:
    """Decode 30 s of media into an item that holds 0.1 s, as on a stream."""
    long = tmp_path / "long.wav"
    long.write_bytes(wav_bytes(30.0, rate=8000, channels=1))
    processes: list[asyncio.subprocess.Process] = []
    spawn = asyncio.create_subprocess_exec

    async def recorded(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await spawn(*args, **kwargs)
        processes.append(process)
        return process

    item = PlaybackItem(sample_rate=RATE, buffer_seconds=0.1)
    with patch.object(asyncio, "create_subprocess_exec", recorded):
        task = asyncio.create_task(
            decode_to(
                item.feed, str(long), binary="ffmpeg", sample_rate=RATE, item=item
            )
        )
        try:
            async with asyncio.timeout(DEADLINE_S):
                await until(lambda: bool(processes) and reading_paused(processes[0]))
            yield task, item
        finally:
            item.close(ItemState.INTERRUPTED)
            if not task.done() and processes:
                # Unstick it so that nothing outlives the test: reading to EOF
                # lets asyncio see the pipe close and finish the wait.
                stdout = processes[0].stdout
                assert stdout is not None
                while await stdout.read(65536):
                    pass
            await asyncio.wait({task})


async def test_stopping_an_item_during_long_media_ends_ffmpeg(tmp_path: Path) -> None:
    async with decoding_long_media(tmp_path) as (task, item):
        item.close(ItemState.INTERRUPTED)
        done, _ = await asyncio.wait({task}, timeout=2.0)
        assert done, "decode_to still waits for an ffmpeg it killed"
    assert decoders() == []


async def test_cancelling_during_long_media_ends_ffmpeg(tmp_path: Path) -> None:
    # AudioStream.stop() cancels each producer once and then waits for it.
    async with decoding_long_media(tmp_path) as (task, _):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        assert done, "a cancelled decode_to still waits for an ffmpeg it killed"
    assert decoders() == []


async def test_cancelling_a_decode_ends_ffmpeg() -> None:
    piping = asyncio.Event()

    async def hangs() -> AsyncIterator[bytes]:
        # A TTS engine that sent its header and then got stuck.
        yield wav_header(RATE * 2)
        piping.set()
        await asyncio.Event().wait()

    item = PlaybackItem(sample_rate=RATE)
    task = asyncio.create_task(
        decode_to(Collector(), hangs(), binary="ffmpeg", sample_rate=RATE, item=item)
    )
    async with asyncio.timeout(DEADLINE_S):
        await piping.wait()
        assert len(decoders()) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert decoders() == []
    assert item.error is None


async def test_ffmpeg_refusing_the_media_says_why(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.wav"
    garbage.write_bytes(b"these are not audio samples\n" * 100)
    item = await decode(str(garbage))
    assert item.state is ItemState.FAILED
    assert str(item.error) == f"{garbage}: Invalid data found when processing input"


async def test_ffmpeg_giving_up_on_a_piped_source_is_its_failure() -> None:
    # ffmpeg stops reading after probing ~1 MB of this; the source keeps
    # offering more, and the write into the closed pipe must not be reported
    # as the source's fault.
    offered = 0

    async def endless_garbage() -> AsyncIterator[bytes]:
        nonlocal offered
        while True:
            offered += 4096
            yield b"not audio " * 410
            await asyncio.sleep(0)

    item = await decode(endless_garbage())
    assert item.state is ItemState.FAILED
    assert str(item.error) == "pipe:0: Invalid data found when processing input"
    assert offered > 0
    assert decoders() == []


async def test_media_without_audio(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(wav_header(0))
    item = await decode(str(empty))
    assert item.state is ItemState.FAILED
    assert str(item.error) == "no audio in the media"


async def test_ffmpeg_dying_without_a_word(tone: Path) -> None:
    # Killed by the OOM killer, say: no output, no message, a bad status.
    binary = shutil.which("false")
    assert binary is not None
    item = await decode(str(tone), binary=binary)
    assert item.state is ItemState.FAILED
    assert str(item.error) == "ffmpeg exit code 1"


async def test_only_whitelisted_protocols_are_opened(tone: Path) -> None:
    # concat: would let a media id stitch arbitrary local files together.
    item = await decode(f"concat:{tone}|{tone}")
    assert item.state is ItemState.FAILED
    assert str(item.error) == f"unsupported media source: concat:{tone}|{tone}"


def test_decoder_command_lines() -> None:
    from_file = decoder_args("ffmpeg", "/media/a.mp3", 24000)
    from_url = decoder_args("ffmpeg", "https://ha.local/a.mp3", 16000)
    from_pipe = decoder_args("ffmpeg", None, 8000)
    whitelist = from_file.index("-protocol_whitelist") + 1
    assert from_file[whitelist] == LOCAL_PROTOCOLS == "file"
    assert from_url[whitelist] == REMOTE_PROTOCOLS
    assert set(REMOTE_PROTOCOLS.split(",")) == {"http", "https", "tcp", "tls", "crypto"}
    assert from_pipe[whitelist] == PIPE_PROTOCOLS == "pipe"
    assert from_file[from_file.index("-i") + 1] == "/media/a.mp3"
    assert from_url[from_url.index("-i") + 1] == "https://ha.local/a.mp3"
    assert from_pipe[from_pipe.index("-i") + 1] == "pipe:0"
    # ffmpeg's network timeout (microseconds) and no reconnecting, for URLs only:
    # other protocols reject these options.
    assert from_url[from_url.index("-rw_timeout") + 1] == "5000000"
    assert from_url[from_url.index("-reconnect") + 1] == "0"
    assert "-xerror" in from_url
    assert (
        decoder_args("ffmpeg", "http://h/a", 8000, network_timeout=0.5)[
            from_url.index("-rw_timeout") + 1
        ]
        == "500000"
    )
    for args in (from_file, from_pipe):
        assert "-rw_timeout" not in args
        assert "-reconnect" not in args
        assert "-xerror" not in args
    for args, rate in ((from_file, "24000"), (from_url, "16000"), (from_pipe, "8000")):
        assert args[args.index("-ar") + 1] == rate
        assert args[args.index("-ac") + 1] == "1"
        assert args[args.index("-f") + 1] == "s16le"
        assert args[-1] == "pipe:1"


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (None, SourceKind.PIPE),
        ("/media/a.mp3", SourceKind.LOCAL),
        ("/media/a:b.mp3", SourceKind.LOCAL),
        ("sounds/chime.wav", SourceKind.LOCAL),
        ("./a:b.wav", SourceKind.LOCAL),
        ("file:///media/a.mp3", SourceKind.LOCAL),
        ("http://ha.local:8123/api/tts_proxy/a.mp3", SourceKind.REMOTE),
        ("HTTPS://cdn.example/a.mp3", SourceKind.REMOTE),
    ],
)
def test_source_kinds(source: str | None, kind: SourceKind) -> None:
    assert source_kind(source) is kind


@pytest.mark.parametrize(
    "source",
    [
        "http:/a.mp3",
        "https:a.mp3",
        "ftp://h/a.mp3",
        "rtmp://h/live",
        "tls://h:443",
        "crypto+file:///a",
        "hls+http://h/a.m3u8",
        "subfile,,start,0,end,0,,:/etc/passwd",
        "cache:http://h/a",
        "async:file:/a",
        "-",
    ],
)
def test_unsupported_sources(source: str) -> None:
    with pytest.raises(DecodeError, match="unsupported media source"):
        source_kind(source)
