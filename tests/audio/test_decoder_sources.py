"""What a media source may reach, how long it may take, and what its errors tell.

Real ffmpeg against real servers on 127.0.0.1 (tests/helpers/http.py): a remote
playlist naming a local file, a local playlist naming a URL, redirects to other
schemes, a server that accepts and never answers, a body that stalls or trickles.
Limits are made small through `DecodeLimits` so that the suite stays fast; the
times to fail are asserted with room for a busy machine.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from custom_components.rtsp_announcer.audio.decoder import DecodeLimits, decode_to
from custom_components.rtsp_announcer.audio.exceptions import (
    DecodeError,
    MediaUnreadableError,
    SourceTimeoutError,
)
from custom_components.rtsp_announcer.audio.playback import ItemState, PlaybackItem
from tests.audio.test_decoder import RATE, Collector, decoders, wav_bytes, wav_header
from tests.helpers.analysis import dominant_frequency
from tests.helpers.http import (
    HttpServer,
    LineServer,
    Reply,
    SilentServer,
    closed_port,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

DEADLINE_S = 15.0
SECRET_HZ = 880
PUBLIC_HZ = 440
# Small limits, each test loosening the ones it does not exercise.
FAST = DecodeLimits(first_audio=1.0, margin=0.5, total=5.0, network_io=1.0)
LONG_S = 20
# Seconds of FLAC sent at once before a stall or a trickle: ffmpeg hands over
# nothing before ~16 kB of it have arrived.
START_S = 3
LOGGER = "custom_components.rtsp_announcer.audio.decoder"


def flac(path: Path, *, freq: int, seconds: float = 1.0) -> Path:
    """Write a FLAC tone (a format the HLS demuxer accepts as a segment)."""
    wav = path.with_suffix(".wav")
    wav.write_bytes(wav_bytes(seconds, rate=RATE, channels=1, freq=freq))
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(wav),
            str(path),
        ],
        check=True,
    )
    wav.unlink()
    return path


def playlist(*segments: str) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2"]
    for segment in segments:
        lines += ["#EXTINF:1.0,", segment]
    lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()


async def decode(
    source: str | AsyncIterator[bytes], limits: DecodeLimits = FAST
) -> tuple[PlaybackItem, Collector, float]:
    """Decode `source`; return the item, what was decoded and how long it took."""
    item = PlaybackItem(sample_rate=RATE)
    collector = Collector()
    started = time.monotonic()
    async with asyncio.timeout(DEADLINE_S):
        produced = await decode_to(
            collector,
            source,
            binary="ffmpeg",
            sample_rate=RATE,
            item=item,
            limits=limits,
        )
    elapsed = time.monotonic() - started
    assert (produced is None) == (item.state is ItemState.FAILED)
    assert decoders() == []
    return item, collector, elapsed


def tone_of(collector: Collector) -> float:
    samples = np.frombuffer(bytes(collector.pcm), dtype="<i2")
    return dominant_frequency(samples, RATE)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A local file no remote source may reach."""
    return flac(tmp_path / "secret.flac", freq=SECRET_HZ)


@pytest.fixture(scope="module")
def long_flac(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """LONG_S seconds of a FLAC tone, to serve piecewise."""
    path = tmp_path_factory.mktemp("flac") / "long.flac"
    return flac(path, freq=PUBLIC_HZ, seconds=LONG_S).read_bytes()


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    async with HttpServer() as running:
        yield running


# --------------------------------------------------------------- what is reached


async def test_a_remote_playlist_plays_remote_segments(
    server: HttpServer, tmp_path: Path
) -> None:
    segment = flac(tmp_path / "public.flac", freq=PUBLIC_HZ).read_bytes()
    server.route("/public.flac", Reply(body=segment))
    url = server.route("/list.m3u8", Reply(body=playlist("public.flac")))
    item, collector, _ = await decode(url)
    assert item.error is None
    assert tone_of(collector) == pytest.approx(PUBLIC_HZ, abs=2)
    assert server.paths == ["/list.m3u8", "/public.flac"]


async def assert_refused(source: str | AsyncIterator[bytes]) -> None:
    """Decoding `source` fails and plays nothing."""
    item, collector, _ = await decode(source)
    assert item.state is ItemState.FAILED
    assert collector.pcm == b""


async def test_a_remote_playlist_cannot_name_a_local_file(
    server: HttpServer, secret: Path
) -> None:
    url = server.route("/list.m3u8", Reply(body=playlist(f"file://{secret}")))
    await assert_refused(url)


async def test_a_remote_playlist_cannot_name_a_bare_local_path(
    server: HttpServer, secret: Path
) -> None:
    url = server.route("/list.m3u8", Reply(body=playlist(str(secret))))
    await assert_refused(url)


async def test_a_local_playlist_cannot_reach_the_network(
    server: HttpServer, tmp_path: Path
) -> None:
    segment = flac(tmp_path / "remote.flac", freq=PUBLIC_HZ).read_bytes()
    segment_url = server.route("/remote.flac", Reply(body=segment))
    local = tmp_path / "list.m3u8"
    local.write_bytes(playlist(segment_url))
    await assert_refused(str(local))
    assert server.requests == []


async def test_a_local_playlist_plays_local_segments(tmp_path: Path) -> None:
    flac(tmp_path / "near.flac", freq=PUBLIC_HZ)
    local = tmp_path / "list.m3u8"
    local.write_bytes(playlist("near.flac"))
    item, collector, _ = await decode(str(local))
    assert item.error is None
    assert tone_of(collector) == pytest.approx(PUBLIC_HZ, abs=2)


async def test_a_piped_playlist_reaches_neither_files_nor_the_network(
    server: HttpServer, secret: Path, tmp_path: Path
) -> None:
    segment = flac(tmp_path / "remote.flac", freq=PUBLIC_HZ).read_bytes()
    segment_url = server.route("/remote.flac", Reply(body=segment))

    async def chunks() -> AsyncIterator[bytes]:
        yield playlist(f"file://{secret}", segment_url)

    await assert_refused(chunks())
    assert server.requests == []


async def test_a_redirect_within_http_is_followed(
    server: HttpServer, tmp_path: Path
) -> None:
    segment = flac(tmp_path / "public.flac", freq=PUBLIC_HZ).read_bytes()
    target = server.route("/public.flac", Reply(body=segment))
    url = server.redirect("/moved.flac", target)
    item, collector, _ = await decode(url)
    assert item.error is None
    assert tone_of(collector) == pytest.approx(PUBLIC_HZ, abs=2)


async def test_a_redirect_to_a_local_file_is_refused(
    server: HttpServer, secret: Path
) -> None:
    url = server.redirect("/moved.flac", f"file://{secret}")
    item, collector, _ = await decode(url)
    assert isinstance(item.error, MediaUnreadableError)
    assert collector.pcm == b""


async def test_a_redirect_to_ftp_is_refused(server: HttpServer) -> None:
    async with LineServer() as ftp:
        url = server.redirect("/moved.flac", f"ftp://127.0.0.1:{ftp.port}/x.flac")
        item, collector, _ = await decode(url)
    assert isinstance(item.error, MediaUnreadableError)
    assert collector.pcm == b""
    # No FTP conversation: the http client never turns into another protocol.
    assert not any(line.upper().startswith((b"USER", b"PASS")) for line in ftp.lines)


@pytest.mark.parametrize(
    "source",
    [
        "concat:/a.wav|/b.wav",
        "subfile,,start,0,end,0,,:/etc/passwd",
        "ftp://127.0.0.1/a.mp3",
        "rtsp://127.0.0.1/a",
        "data:audio/wav;base64,UklGRg==",
        "tcp://127.0.0.1:9",
        "pipe:0",
        "fd:0",
    ],
)
async def test_other_schemes_are_refused_before_ffmpeg_starts(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []

    async def spawn(*args: object, **kwargs: object) -> None:
        started.append(args)
        raise AssertionError

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spawn)
    item, _, _ = await decode(source)
    assert item.state is ItemState.FAILED
    assert isinstance(item.error, DecodeError)
    assert str(item.error).startswith("unsupported media source")
    assert started == []


# --------------------------------------------------------------- time limits


@pytest.mark.parametrize(
    ("limits", "max_elapsed", "decoder_gave_up"),
    [
        # ffmpeg's own network timeout ends it; the decoder's limits are far away.
        (
            DecodeLimits(first_audio=10.0, margin=10.0, total=10.0, network_io=0.5),
            3.0,
            False,
        ),
        # ffmpeg would wait a minute: the first-audio limit kills it first.
        (
            DecodeLimits(first_audio=0.5, margin=10.0, total=10.0, network_io=60.0),
            2.0,
            True,
        ),
    ],
    ids=["in_ffmpeg", "in_the_decoder"],
)
async def test_a_server_that_never_answers_times_out(
    caplog: pytest.LogCaptureFixture,
    limits: DecodeLimits,
    max_elapsed: float,
    decoder_gave_up: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    async with SilentServer() as silent:
        item, _, elapsed = await decode(f"http://127.0.0.1:{silent.port}/a", limits)
        assert silent.connections >= 1
    assert isinstance(item.error, MediaUnreadableError)
    assert 0.4 < elapsed < max_elapsed
    if decoder_gave_up:
        assert "no audio within 0.5 s" in caplog.text
    else:
        assert "no audio within" not in caplog.text  # ffmpeg gave up, not the decoder


async def test_headers_then_nothing_times_out(
    server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    url = server.route("/a.flac", Reply(body=b"fLaC" * 1000, send_first=0))
    limits = DecodeLimits(first_audio=10.0, margin=10.0, total=10.0, network_io=0.5)
    item, collector, elapsed = await decode(url, limits)
    assert isinstance(item.error, MediaUnreadableError)
    assert collector.pcm == b""
    assert 0.4 < elapsed < 3.0
    assert "no audio within" not in caplog.text  # ffmpeg gave up, not the decoder


async def test_a_body_that_stalls_midway_times_out(
    server: HttpServer, long_flac: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    # Three seconds of audio arrive, then the server holds the connection open.
    # (FLAC: ffmpeg decodes it as it comes; a WAV it analyses for 5 s first.)
    url = server.route(
        "/a.flac", Reply(body=long_flac, send_first=START_S * len(long_flac) // LONG_S)
    )
    limits = DecodeLimits(first_audio=5.0, margin=0.5, total=10.0, network_io=60.0)
    item, collector, elapsed = await decode(url, limits)
    assert isinstance(item.error, MediaUnreadableError)
    # What arrived was decoded and handed on before the limit struck.
    audio_s = len(collector.pcm) / (RATE * 2)
    assert 0 < audio_s <= START_S
    # The audio it gave, plus the margin, plus ffmpeg's start.
    assert audio_s + 0.5 < elapsed < audio_s + 2.5
    assert "the media source fell behind its audio" in caplog.text


async def test_a_body_cut_off_by_the_network_timeout_fails(
    server: HttpServer, long_flac: bytes
) -> None:
    # ffmpeg's network timeout ends the input as its end would: the decoder must
    # not take the first seconds for the whole media.
    url = server.route(
        "/a.flac", Reply(body=long_flac, send_first=START_S * len(long_flac) // LONG_S)
    )
    limits = DecodeLimits(first_audio=5.0, margin=10.0, total=10.0, network_io=0.5)
    item, collector, elapsed = await decode(url, limits)
    assert isinstance(item.error, MediaUnreadableError)
    assert len(collector.pcm) > 0
    assert elapsed < 3.0


@pytest.mark.parametrize(
    ("piece", "limits", "least", "most", "logged"),
    [
        # A quarter of real time, for ever: ffmpeg's network timeout never fires.
        pytest.param(
            40,
            DecodeLimits(first_audio=5.0, margin=0.5, total=30.0, network_io=60.0),
            0.0,
            6.0,
            "the media source fell behind its audio",
            id="slower than real time times out",
        ),
        # Twice real time: only the absolute cap can end it before its end.
        pytest.param(
            5,
            DecodeLimits(first_audio=5.0, margin=5.0, total=1.5, network_io=60.0),
            1.4,
            3.5,
            "the media source took longer than 1.5 s",
            id="never ending meets the total limit",
        ),
    ],
)
async def test_a_trickling_source_is_cut_off(
    server: HttpServer,
    long_flac: bytes,
    caplog: pytest.LogCaptureFixture,
    piece: int,
    limits: DecodeLimits,
    least: float,
    most: float,
    logged: str,
) -> None:
    """After its first seconds a source trickles on, 1/`piece` s of audio at a time."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    per_second = len(long_flac) // LONG_S
    url = server.route(
        "/a.flac",
        Reply(
            body=long_flac,
            send_first=START_S * per_second,
            trickle=per_second // piece,
        ),
    )
    item, collector, elapsed = await decode(url, limits)
    assert isinstance(item.error, MediaUnreadableError)
    assert len(collector.pcm) > 0
    assert least < elapsed < most
    assert logged in caplog.text


async def test_a_local_source_that_sends_no_audio_in_time() -> None:
    # A TTS engine that sent a header and then hangs.
    async def hangs() -> AsyncIterator[bytes]:
        yield wav_header(RATE * 2)
        await asyncio.Event().wait()

    limits = DecodeLimits(first_audio=0.5, margin=1.0, total=5.0, network_io=1.0)
    item, _, elapsed = await decode(hangs(), limits)
    assert isinstance(item.error, SourceTimeoutError)
    assert str(item.error) == "no audio within 0.5 s"
    assert 0.4 < elapsed < 2.0


async def test_a_piped_source_that_falls_behind(long_flac: bytes) -> None:
    per_second = len(long_flac) // LONG_S

    async def slow() -> AsyncIterator[bytes]:
        yield long_flac[: START_S * per_second]
        for start in range(START_S * per_second, len(long_flac), per_second // 40):
            await asyncio.sleep(0.1)  # a quarter of real time
            yield long_flac[start : start + per_second // 40]

    limits = DecodeLimits(first_audio=5.0, margin=0.5, total=10.0, network_io=1.0)
    item, collector, elapsed = await decode(slow(), limits)
    assert isinstance(item.error, SourceTimeoutError)
    assert str(item.error) == "the media source fell behind its audio"
    assert len(collector.pcm) > 0
    assert elapsed < 6.0


async def test_waiting_for_the_consumer_is_not_the_source_stalling(
    tmp_path: Path,
) -> None:
    # A consumer that takes longer than real time (a queue ahead of this item)
    # must not make a healthy source look stalled.
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(1.0, rate=RATE, channels=1))
    item = PlaybackItem(sample_rate=RATE)

    async def slow_consumer(data: bytes) -> bool:
        await asyncio.sleep(0.3)
        return True

    limits = DecodeLimits(first_audio=1.0, margin=0.1, total=0.5, network_io=1.0)
    async with asyncio.timeout(DEADLINE_S):
        produced = await decode_to(
            slow_consumer,
            str(path),
            binary="ffmpeg",
            sample_rate=RATE,
            item=item,
            limits=limits,
        )
    assert produced == RATE * 2
    assert item.error is None


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="first_audio"):
        DecodeLimits(first_audio=0)
    with pytest.raises(ValueError, match="total"):
        DecodeLimits(total=float("nan"))
    with pytest.raises(ValueError, match="network_io"):
        DecodeLimits(network_io=-1)


# --------------------------------------------------------------- what errors tell


async def test_remote_failures_all_read_the_same(
    server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    server.route("/garbage.wav", Reply(body=b"not audio at all\n" * 500))
    refused = await closed_port()
    async with SilentServer() as silent:
        sources = {
            "refused": f"http://127.0.0.1:{refused}/a.wav",
            "silent": f"http://127.0.0.1:{silent.port}/a.wav",
            "not found": server.url("/missing.wav"),
            "not audio": server.url("/garbage.wav"),
            "no such host": "http://no-such-host.invalid/a.wav",
        }
        errors = {}
        for name, url in sources.items():
            item, _, _ = await decode(url)
            errors[name] = item.error
    assert {type(error) for error in errors.values()} == {MediaUnreadableError}
    assert {str(error) for error in errors.values()} == {"the media could not be read"}
    # The reasons are in the debug log, for whoever owns the machine.
    assert "Connection refused" in caplog.text
    assert "404" in caplog.text


async def test_a_failing_url_leaks_no_secret(
    server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    url = server.url(
        "/missing.wav?authSig=sig-s3cr3t&X-Amz-Signature=amz-s3cr3t&n=1",
        userinfo="alice:pw-s3cr3t@",
    )
    item, _, _ = await decode(url)
    assert isinstance(item.error, MediaUnreadableError)
    assert "404" in caplog.text
    assert "authSig=***" in caplog.text
    for secret_text in ("sig-s3cr3t", "amz-s3cr3t", "pw-s3cr3t", "alice"):
        assert secret_text not in caplog.text
        assert secret_text not in str(item.error)


async def test_a_local_failure_still_says_why(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.wav"
    garbage.write_bytes(b"these are not audio samples\n" * 100)
    item, _, _ = await decode(str(garbage))
    assert type(item.error) is DecodeError
    assert str(item.error) == f"{garbage}: Invalid data found when processing input"
