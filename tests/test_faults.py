"""Faults with real processes: ffmpeg killed or frozen, servers absent or refusing.

Everything here runs the integration's own ffmpeg against real RTSP peers: ffmpeg's
listener (`ListenReceiver`), the rtsp-server-perl relay, or, for answers no real
server here gives on demand (401, 404), a small asyncio RTSP peer that answers
every request with one status line. Each test logs what it measured to the
`tests.figures` logger (`-o log_cli=true --log-cli-level=INFO` shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import random
import select
import signal
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import psutil
import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from numpy.typing import NDArray
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.announce import AnnounceRequest
from custom_components.rtsp_announcer.audio.models import PublisherState, StreamSettings
from custom_components.rtsp_announcer.audio.options import PcmTransport
from custom_components.rtsp_announcer.audio.playback import (
    ItemState,
    PlaybackItem,
    PlaybackQueue,
)
from custom_components.rtsp_announcer.audio.publisher import (
    FailureKind,
    Publisher,
    Supervision,
    classify,
)
from custom_components.rtsp_announcer.audio.stream import AudioStream, LiveSource
from custom_components.rtsp_announcer.const import DOMAIN, EVENT_ANNOUNCEMENT

from .common import (
    add_entry,
    ffmpeg_children,
    no_ffmpeg,
    record_events,
    state_of,
    unload,
    wait_available,
    wait_for_state,
    wait_unavailable,
)
from .common import announce as announce_all
from .helpers.analysis import arrival_gaps, continuity, rms_windows
from .helpers.rtsp import HOST, ListenReceiver, RelayServer, dies_with_parent, free_port
from .helpers.rtsp.peers import StatusServer
from .helpers.waiting import until

ENTITY = "media_player.hall"
RATE = 24000
SECRET = "S3cr3tP4ss"  # noqa: S105 - the secret the logs must never show
SHORT = "Turn on the kitchen lights."
# About 4 s of speech.
LONG = "The quick brown fox jumps over the lazy dog, and the band plays on."
FAST = Supervision(backoff_initial=0.2, backoff_max=1.0)
SUPERVISION = "custom_components.rtsp_announcer.SUPERVISION"
FIGURES = logging.getLogger("tests.figures")


# --------------------------------------------------------------------------- helpers


async def announce(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await announce_all(hass, **data))[ENTITY]
    return result


async def start_stream(
    hass: HomeAssistant, url: str, **options: Any
) -> MockConfigEntry:
    entry = add_entry(hass, url, **options)
    assert await hass.config_entries.async_setup(entry.entry_id)
    return entry


def publisher_of(entry: MockConfigEntry) -> Publisher:
    publisher: Publisher | None = entry.runtime_data.stream.publisher
    assert publisher is not None
    return publisher


def speech_extent(samples: NDArray[np.int16]) -> tuple[float, float] | None:
    """First and last 20 ms window louder than the silence padding, in seconds."""
    levels = rms_windows(samples, RATE, 20)
    loud = np.flatnonzero(levels > -45.0)
    if loud.size == 0:
        return None
    return float(loud[0]) * 0.02, float(loud[-1] + 1) * 0.02


def issues_of(hass: HomeAssistant) -> dict[str, ir.IssueEntry]:
    return {
        issue_id: issue
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN
    }


async def raised_issue(
    hass: HomeAssistant, url: str, kind: str, **options: Any
) -> tuple[MockConfigEntry, ir.IssueEntry, float]:
    """Start a stream at `url`, wait for its `kind` repair issue.

    Returns the entry, the issue and the seconds from setup to the issue.
    """
    entry = await start_stream(hass, url, **options)
    started = time.monotonic()
    issue_id = f"{entry.entry_id}_{kind}"
    await until(lambda: issue_id in issues_of(hass), 15, f"the {kind} issue")
    return entry, issues_of(hass)[issue_id], time.monotonic() - started


def hidden_url(server: StatusServer) -> dict[str, str]:
    """An issue's placeholders for a stream at `server`: credentials hidden."""
    return {"name": "Hall", "url": f"rtsp://***:***@{HOST}:{server.port}/announce"}


def reauth_flows(hass: HomeAssistant) -> list[Any]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


def no_destroyed_tasks(caplog: pytest.LogCaptureFixture) -> None:
    gc.collect()
    assert "Task was destroyed but it is pending" not in caplog.text
    assert "Task exception was never retrieved" not in caplog.text


def sleep_in_the_loop(seconds: float) -> None:
    """Block the thread that runs the event loop, as a blocking call would."""
    # select() rather than time.sleep(), which the test plugin reports as a bug.
    select.select([], [], [], seconds)


# ------------------------------------------------------------------------ ffmpeg dies


async def test_sigkill_five_times_loses_no_announcement(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    rng = random.Random(20250425)
    with patch(SUPERVISION, FAST):
        entry = await start_stream(hass, receiver.url)
    await wait_available(hass, ENTITY)
    await receiver.wait_for_session(1, timeout=10, min_samples=RATE // 4)
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    ids = [
        (await announce(hass, message=text, wait=False))["announcement_id"]
        for text in (LONG, "Number one.", "Number two.")
    ]
    stream = entry.runtime_data.stream
    publisher = publisher_of(entry)
    down: list[float] = []
    back: list[float] = []
    playing_at_kill: list[str | None] = []
    for kill in range(5):
        if kill < 2:
            # Twice in the middle of the long announcement.
            await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 10)
            await asyncio.sleep(rng.uniform(0.3, 1.5))
        elif kill == 2:
            # Then wherever the queue is once the long one has been heard.
            await until(lambda: ids[0] in finished_ids(events), 20, "long finished")
            await asyncio.sleep(rng.uniform(0.0, 0.8))
        else:
            await asyncio.sleep(rng.uniform(0.3, 1.2))
        current = stream.queue.current
        playing_at_kill.append(
            current.title if current is not None and stream.queue.playing else None
        )
        pid = publisher.pid
        assert pid is not None
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        await wait_unavailable(hass, ENTITY, timeout=3)
        down.append(time.monotonic() - killed)
        if kill == 3:
            # Queued while the stream is down: played once it is back. Home
            # Assistant calls no unavailable entity, so it goes to the
            # stream's announcer directly.
            announcer = entry.runtime_data.announcer
            plan = await announcer.async_plan(
                AnnounceRequest(message="Number three.", preannounce=False)
            )
            ids.append(announcer.enqueue(plan).id)
        await wait_available(hass, ENTITY, timeout=10)
        back.append(time.monotonic() - killed)
        assert publisher.pid not in {None, pid}
    assert playing_at_kill[:2] == [LONG, LONG]

    await until(lambda: set(ids) <= finished_ids(events), 30, "all finished")
    await hass.async_block_till_done()
    outcomes = {(e.data["announcement_id"], e.data["type"]) for e in events}
    assert {(i, t) for i, t in outcomes if t in {"interrupted", "failed"}} == set()
    assert publisher.restarts == 5
    assert stream.source.replays >= 2
    # Every restart delivered audio to the server again.
    assert len(receiver.sessions) >= 6
    FIGURES.info(
        f"SIGKILL x5: unavailable after {max(down) * 1000:.0f} ms max"
        f" (median {np.median(down) * 1000:.0f}), available again after"
        f" {np.median(back):.2f} s median / {max(back):.2f} s max;"
        f" {len(ids)} announcements all finished, replays {stream.source.replays},"
        f" playing at kills {playing_at_kill}"
    )
    await unload(hass, entry)


def finished_ids(events: list[Event]) -> set[str]:
    return {e.data["announcement_id"] for e in events if e.data["type"] == "finished"}


async def test_the_item_playing_when_ffmpeg_dies_is_heard_whole(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    with patch(SUPERVISION, FAST):
        entry = await start_stream(hass, receiver.url)
    await wait_available(hass, ENTITY)
    await receiver.wait_for_session(1, timeout=10, min_samples=RATE // 4)
    before = receiver.total_samples
    called = time.monotonic()
    call = asyncio.create_task(announce(hass, message=LONG))
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 10)
    # Killed while its speech is being heard.
    await until(
        lambda: speech_extent(receiver.samples()[before:]) is not None,
        10,
        "the announcement at the receiver",
    )
    killed_after = time.monotonic() - called
    pid = publisher_of(entry).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    result = await asyncio.wait_for(call, 30)
    assert result["state"] == "finished"
    await receiver.wait_for_samples(receiver.total_samples + RATE, timeout=5)
    # The second session carries the announcement again, from its start.
    session = receiver.sessions[-1]
    extent = speech_extent(receiver.session_samples(session))
    assert extent is not None
    heard = extent[1] - extent[0]
    assert heard == pytest.approx(result["duration"], abs=0.5)
    FIGURES.info(
        f"killed {killed_after:.2f} s after the call of a"
        f" {result['duration']:.2f} s announcement, once it was heard:"
        f" {heard:.2f} s of it heard after the restart"
    )
    await unload(hass, entry)


async def test_sigstop_is_caught_by_the_progress_watchdog(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    entry = await start_stream(hass, receiver.url)
    await wait_available(hass, ENTITY)
    await receiver.wait_for_session(1, timeout=10, min_samples=RATE // 4)
    publisher = publisher_of(entry)
    pid = publisher.pid
    assert pid is not None
    stopped = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        await wait_unavailable(hass, ENTITY, timeout=10)
        detected = time.monotonic() - stopped
        await wait_available(hass, ENTITY, timeout=10)
        recovered = time.monotonic() - stopped
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    # The stall timeout (5 s) after the last progress block ffmpeg wrote, up
    # to a progress period (0.5 s) before the SIGSTOP; the clock's ticks read
    # the blocks and move the watchdog, so at most a tick is added.
    assert 3.5 < detected < 6.5
    assert publisher.restarts == 1
    assert publisher.pid != pid
    await receiver.wait_for_session(2, timeout=10, min_samples=RATE // 4)
    FIGURES.info(
        f"SIGSTOP: detected and killed after {detected:.2f} s,"
        f" publishing again after {recovered:.2f} s"
    )
    await unload(hass, entry)


# --------------------------------------------------------------------------- servers


async def test_server_absent_at_start_then_appearing(hass: HomeAssistant) -> None:
    port = free_port()
    entry = await start_stream(hass, f"rtsp://{HOST}:{port}/announce")
    publisher = publisher_of(entry)
    await until(lambda: publisher.restarts >= 1, 5, "a retry")
    assert state_of(hass, ENTITY).state == STATE_UNAVAILABLE
    assert publisher.failure is FailureKind.CONNECTION_REFUSED
    await asyncio.sleep(1.0)
    async with ListenReceiver(port, rate=RATE) as receiver:
        appeared = time.monotonic()
        await wait_available(hass, ENTITY, timeout=20)
        took = time.monotonic() - appeared
        await receiver.wait_for_session(1, timeout=10, min_samples=RATE // 4)
        # Refused connections are not something for the user to repair.
        assert issues_of(hass) == {}
        FIGURES.info(
            f"server appeared after {publisher.restarts} refused attempts:"
            f" publishing {took:.2f} s later"
        )
        await unload(hass, entry)


@pytest.mark.usefixtures("socket_enabled")
async def test_path_not_found_raises_an_issue_until_it_publishes(
    hass: HomeAssistant,
) -> None:
    server = StatusServer("404 Not Found")
    await server.start()
    try:
        entry, issue, raised = await raised_issue(
            hass, server.url(f"user:{SECRET}@"), "path_not_found"
        )
        assert issue.translation_key == "path_not_found"
        assert issue.is_fixable is False
        assert issue.severity is ir.IssueSeverity.ERROR
        assert issue.translation_placeholders == hidden_url(server)
        publisher = publisher_of(entry)
        assert publisher.failure is FailureKind.PATH_NOT_FOUND
        assert publisher.failure_streak >= 3
        assert "ANNOUNCE" in server.requests
        assert reauth_flows(hass) == []
        port = server.port
    finally:
        await server.stop()

    # The path appears: a server that takes the stream on the same port.
    async with ListenReceiver(port, rate=RATE) as receiver:
        await wait_available(hass, ENTITY, timeout=20)
        assert issues_of(hass) == {}
        await receiver.wait_for_session(1, timeout=10, min_samples=RATE // 4)
    FIGURES.info(
        f"404: repair issue raised {raised:.2f} s after setup, gone on publish"
    )
    await unload(hass, entry)


@pytest.mark.usefixtures("socket_enabled")
async def test_unauthorized_raises_an_issue_and_asks_for_credentials(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.rtsp_announcer")
    server = StatusServer("401 Unauthorized", options_too=True)
    await server.start()
    try:
        entry, issue, raised = await raised_issue(
            hass, server.url(f"user:{SECRET}@"), "unauthorized"
        )
        await until(lambda: bool(reauth_flows(hass)), 5, "the reauth flow")
        assert issue.translation_key == "unauthorized"
        assert issue.translation_placeholders == hidden_url(server)
        assert publisher_of(entry).failure is FailureKind.UNAUTHORIZED
        (flow,) = reauth_flows(hass)
        assert flow["step_id"] == "reauth_confirm"
        assert flow["context"]["entry_id"] == entry.entry_id
        # Retries do not start a second flow.
        streak = publisher_of(entry).failure_streak
        await until(
            lambda: publisher_of(entry).failure_streak > streak + 1, 10, "retries"
        )
        assert len(reauth_flows(hass)) == 1

        # This server refuses everyone: the flow tries the new password first.
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {"username": "user", "password": "n3w-Pass"}
        )
        assert result["type"] == "form"
        assert result["errors"] == {"base": "invalid_auth"}
        assert entry.data["url"] == server.url(f"user:{SECRET}@")
        port = server.port
    finally:
        await server.stop()

    # A server on the same port that takes the stream.
    async with ListenReceiver(port, rate=RATE):
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {"username": "user", "password": "n3w-Pass"}
        )
        assert result["type"] == "abort"
        assert result["reason"] == "reauth_successful"
        await hass.async_block_till_done()
        assert entry.data["url"] == f"rtsp://user:n3w-Pass@{HOST}:{port}/announce"
        assert entry.state is ConfigEntryState.LOADED
        await wait_available(hass, ENTITY, timeout=20)
        assert issues_of(hass) == {}
        await unload(hass, entry)
    assert SECRET not in caplog.text
    assert "n3w-Pass" not in caplog.text
    FIGURES.info(f"401: repair issue and reauth flow {raised:.2f} s after setup")


async def test_forbidden_path_on_the_relay(hass: HomeAssistant) -> None:
    async with RelayServer() as relay:
        occupant = await asyncio.create_subprocess_exec(
            *dies_with_parent(
                [
                    "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                    "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=24000",
                    "-c:a", "aac", "-f", "rtsp", "-rtsp_transport", "udp",
                    relay.publish_url,
                ]
            ),
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await relay.wait_for_mount(timeout=15)
            entry, _, _ = await raised_issue(
                hass, relay.publish_url, "forbidden", rtsp_transport="udp"
            )
            assert publisher_of(entry).failure is FailureKind.FORBIDDEN
        finally:
            # SIGTERM: the occupant leaves with a TEARDOWN and frees the path.
            with contextlib.suppress(ProcessLookupError):
                occupant.terminate()
            await occupant.wait()
        await wait_available(hass, ENTITY, timeout=20)
        assert issues_of(hass) == {}
        await unload(hass, entry)


async def test_backoff_is_capped(hass: HomeAssistant) -> None:
    delays: list[float] = []
    attempts: list[float] = []
    timing = Supervision(backoff_initial=0.05, backoff_max=0.4)
    with patch(SUPERVISION, timing):
        entry = await start_stream(hass, f"rtsp://{HOST}:{free_port()}/announce")
    stream = entry.runtime_data.stream
    publisher = publisher_of(entry)

    def on_change() -> None:
        if publisher.state is PublisherState.BACKOFF and (
            len(delays) <= publisher.restarts
        ):
            assert publisher.retry_delay is not None
            delays.append(publisher.retry_delay)
        elif publisher.state is PublisherState.STARTING:
            attempts.append(time.monotonic())

    stream.add_listener(on_change)
    await until(lambda: len(delays) >= 8, 15, "eight retries")
    await unload(hass, entry)
    # The first delay may have been recorded before the listener was added.
    assert delays[-4:] == [0.4] * 4
    assert max(delays) == 0.4
    doubling = [d for d in delays if d < 0.4]
    assert all(b == pytest.approx(a * 2) for a, b in itertools.pairwise(doubling))
    gaps = np.diff(attempts)
    # An attempt: the back-off, ffmpeg's start and its refused connection.
    assert gaps.max() < 0.4 + 1.5
    FIGURES.info(
        f"back-off delays {delays}; attempts every {np.median(gaps):.2f} s"
        f" median, {gaps.max():.2f} s max"
    )


# --------------------------------------------------------------------------- setup


async def test_missing_ffmpeg_is_not_ready_with_a_translated_message(
    hass: HomeAssistant,
) -> None:
    entry = add_entry(hass, f"rtsp://{HOST}:9/announce")
    with no_ffmpeg():
        await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert entry.reason.startswith("ffmpeg was not found.")
    assert ffmpeg_children() == []
    await hass.config_entries.async_unload(entry.entry_id)


async def test_socket_directory_not_creatable_falls_back_to_the_pipe(
    hass: HomeAssistant, receiver: ListenReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with patch(
        "custom_components.rtsp_announcer.audio.transport.tempfile.mkdtemp",
        side_effect=PermissionError(13, "Permission denied"),
    ):
        entry = await start_stream(hass, receiver.url)
    stream = entry.runtime_data.stream
    assert entry.state is ConfigEntryState.LOADED
    assert stream.feed is None
    assert stream.transport is PcmTransport.PIPE
    assert "through its stdin instead" in caplog.text
    await wait_available(hass, ENTITY)
    await receiver.wait_for_session(1, timeout=10, min_samples=RATE // 2)
    await unload(hass, entry)


# --------------------------------------------------------------------------- teardown


async def playing_long(
    hass: HomeAssistant, receiver: ListenReceiver
) -> tuple[MockConfigEntry, Path, int | None]:
    """A stream playing a long announcement: its entry, feed directory, ffmpeg's pid."""
    entry = await start_stream(hass, receiver.url)
    await wait_available(hass, ENTITY)
    await announce(hass, message=LONG, wait=False)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 10)
    feed = entry.runtime_data.stream.feed
    assert feed is not None
    return entry, feed.path.parent, publisher_of(entry).pid


async def test_home_assistant_stop_during_an_announcement(
    hass: HomeAssistant, receiver: ListenReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    entry, socket_dir, pid = await playing_long(hass, receiver)
    stream = entry.runtime_data.stream
    await hass.async_stop()
    assert ffmpeg_children() == []
    assert pid is not None
    assert not psutil.pid_exists(pid)
    assert not socket_dir.exists()
    assert not stream.clock.running
    assert [e.data["type"] for e in events][-1] == "cancelled"
    no_destroyed_tasks(caplog)


async def test_reload_during_an_announcement(
    hass: HomeAssistant, receiver: ListenReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    entry, old_dir, old_pid = await playing_long(hass, receiver)
    old = entry.runtime_data.stream
    assert await hass.config_entries.async_reload(entry.entry_id)
    assert not old_dir.exists()
    assert old_pid is not None
    assert not psutil.pid_exists(old_pid)
    assert not old.clock.running
    await wait_available(hass, ENTITY, timeout=15)
    assert len(ffmpeg_children()) == 1
    await unload(hass, entry)
    no_destroyed_tasks(caplog)


@pytest.mark.parametrize("phase", [PublisherState.BACKOFF, PublisherState.STARTING])
async def test_unload_while_ffmpeg_restarts(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    caplog: pytest.LogCaptureFixture,
    phase: PublisherState,
) -> None:
    entry = await start_stream(hass, receiver.url)
    await wait_available(hass, ENTITY)
    stream = entry.runtime_data.stream
    assert stream.feed is not None
    socket_dir = stream.feed.path.parent
    publisher = publisher_of(entry)
    pid = publisher.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await until(lambda: publisher.state is phase, 5, f"state {phase}")
    new_pid = publisher.pid
    await unload(hass, entry)
    for gone in (pid, new_pid):
        assert gone is None or not psutil.pid_exists(gone)
    assert not socket_dir.exists()
    no_destroyed_tasks(caplog)


# --------------------------------------------------------------------------- loop stall


async def test_a_stalled_event_loop_is_caught_up(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    entry = await start_stream(hass, receiver.url)
    await wait_available(hass, ENTITY)
    session = await receiver.wait_for_session(1, timeout=10, min_samples=RATE)
    clock = entry.runtime_data.stream.clock
    await asyncio.sleep(1.0)
    stalled_at = time.monotonic()
    hass.loop.call_soon(sleep_in_the_loop, 0.5)
    await asyncio.sleep(4.0)
    after = [(t, n) for t, n in session.arrivals if t >= stalled_at - 1.0]
    gaps = arrival_gaps(after, 0.15)
    measured = continuity(after, RATE)
    assert clock.stats.max_tick_lag >= 0.45
    # Caught up in a burst, not skipped: the stall was shorter than the catch-up.
    assert clock.stats.underruns == 0
    assert clock.drift_samples() <= clock.frame_samples
    assert max(gaps, default=0.0) < 0.5 + 0.25
    assert measured.ratio == pytest.approx(1.0, abs=0.03)
    FIGURES.info(
        f"loop stalled 0.5 s: longest gap at the receiver"
        f" {max(gaps, default=0):.3f} s,"
        f" audio/wall over {measured.wall_s:.1f} s = {measured.ratio:.4f},"
        f" clock max lag {clock.stats.max_tick_lag * 1000:.0f} ms,"
        f" drift {clock.drift_samples()} samples"
    )
    await unload(hass, entry)


# --------------------------------------------------------------------- the pieces


@pytest.mark.parametrize(
    ("lines", "kind"),
    [
        (["[rtsp @ 0x1] [error] method ANNOUNCE failed: 401 Unauthorized"], "401"),
        (["[error] Could not write header: Server returned 401 Unauthorized"], "401"),
        (["[rtsp @ 0x1] [error] method ANNOUNCE failed: 403 Forbidden"], "403"),
        (["[rtsp @ 0x1] [error] method ANNOUNCE failed: 404 Not Found"], "404"),
        (
            ["[tcp @ 0x1] [error] Connection to tcp://h:9 failed: Connection refused"],
            "",
        ),
        # Numbers that only look like a status: a port, the socket's directory.
        (
            [
                "[info] Output #0, rtsp, to 'rtsp://127.0.0.1:14010/announce':",
                "[info] Input #0, s16le, from 'unix:/tmp/rtsp-a404b/pcm.sock'",
                "[error] av_interleaved_write_frame(): Broken pipe",
            ],
            "exited",
        ),
        ([], "exited"),
    ],
)
def test_classify(lines: list[str], kind: str) -> None:
    expected = {
        "401": FailureKind.UNAUTHORIZED,
        "403": FailureKind.FORBIDDEN,
        "404": FailureKind.PATH_NOT_FOUND,
        "": FailureKind.CONNECTION_REFUSED,
        "exited": FailureKind.EXITED,
    }[kind]
    assert classify(lines) is expected


class Gate:
    """Whether ffmpeg publishes, as the live source asks it."""

    def __init__(self) -> None:
        self.live = True

    def __call__(self) -> bool:
        return self.live


def numbered(frames: int, samples: int) -> bytes:
    """PCM whose every frame holds its own number, to tell frames apart."""
    return b"".join(
        np.full(samples, n + 1, dtype="<i2").tobytes() for n in range(frames)
    )


def frame_number(frame: bytes | None) -> int:
    return 0 if frame is None else int(np.frombuffer(frame, dtype="<i2")[0])


async def test_live_source_replays_the_interrupted_item_from_its_start() -> None:
    queue = PlaybackQueue()
    gate = Gate()
    source = LiveSource(queue, is_live=gate, max_replay_bytes=1 << 20)
    item = PlaybackItem(sample_rate=RATE)
    queue.add(item)
    await item.feed(numbered(6, 10))
    item.end()
    assert [frame_number(source.read(10)) for _ in range(3)] == [1, 2, 3]

    # ffmpeg dies: silence while it restarts, and the queue is not read.
    gate.live = False
    source.lost()
    assert source.read(10) is None
    assert item.samples_played == 30
    gate.live = True
    heard = [frame_number(source.read(10)) for _ in range(5)]
    assert heard == [1, 2, 3, 4, 5]
    # Dies again during the replay: from the start once more.
    source.lost()
    assert source.replays == 2
    heard = [frame_number(source.read(10)) for _ in range(8)]
    assert heard == [1, 2, 3, 4, 5, 6, 0, 0]
    assert item.state is ItemState.FINISHED
    assert source.replay_pending_bytes == 0


async def test_live_source_forgets_what_was_stopped_or_finished() -> None:
    queue = PlaybackQueue()
    source = LiveSource(queue, is_live=Gate(), max_replay_bytes=1 << 20)
    first, second = PlaybackItem(sample_rate=RATE), PlaybackItem(sample_rate=RATE)
    queue.add(first)
    queue.add(second)
    await first.feed(numbered(2, 10))
    first.end()
    await second.feed(numbered(3, 10))
    second.end()
    assert [frame_number(source.read(10)) for _ in range(3)] == [1, 2, 1]
    # The first one finished before the loss: only the second is replayed.
    source.lost()
    # A stop during the outage drops the replay with the item.
    queue.stop()
    assert source.read(10) is None
    assert source.replay_pending_bytes == 0
    # Nothing playing: a loss replays nothing.
    source.lost()
    assert source.replays == 1


async def test_live_source_lets_a_long_item_resume_and_a_muted_one_stay_quiet() -> None:
    queue = PlaybackQueue()
    source = LiveSource(queue, is_live=Gate(), max_replay_bytes=2 * 10 * 2)
    item = PlaybackItem(sample_rate=RATE)
    queue.add(item)
    await item.feed(numbered(5, 10))
    item.end()
    assert [frame_number(source.read(10)) for _ in range(3)] == [1, 2, 3]
    # More than the replay bound has played: it resumes where it was.
    source.lost()
    assert source.replays == 0
    assert frame_number(source.read(10)) == 4

    muted = PlaybackItem(sample_rate=RATE)
    queue.add(muted)
    await muted.feed(numbered(2, 10))
    muted.end()
    assert frame_number(source.read(10)) == 5
    assert frame_number(source.read(10)) == 1
    source.lost()
    queue.gain = 0.0
    assert source.read(10) is None
    assert source.replay_pending_bytes == 0


async def test_publisher_without_its_binary_keeps_retrying() -> None:
    stream = AudioStream(
        StreamSettings(url=f"rtsp://{HOST}:9/announce"),
        binary="/nonexistent/ffmpeg",
        supervision=Supervision(backoff_initial=0.01, backoff_max=0.02),
    )
    await stream.start()
    try:
        publisher = stream.publisher
        assert publisher is not None
        await until(lambda: publisher.failure_streak >= 3, 5, "three attempts")
        assert publisher.failure is FailureKind.NOT_FOUND
        assert publisher.last_error is not None
        assert publisher.last_error.startswith("cannot start /nonexistent/ffmpeg")
        assert not stream.available
    finally:
        await stream.stop()


@pytest.mark.usefixtures("socket_enabled")
async def test_a_server_that_never_answers_is_a_start_timeout() -> None:
    held: list[asyncio.StreamWriter] = []

    def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    stream = AudioStream(
        StreamSettings(url=f"rtsp://{HOST}:{port}/announce"),
        supervision=Supervision(start_timeout=0.5, backoff_initial=5.0),
    )
    await stream.start()
    try:
        publisher = stream.publisher
        assert publisher is not None
        took = await until(
            lambda: publisher.state is PublisherState.BACKOFF, 5, "the start timeout"
        )
        assert publisher.failure is FailureKind.START_TIMEOUT
        assert 0.5 <= took < 2.5
        assert held
    finally:
        await stream.stop()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert ffmpeg_children() == []


async def test_stopping_a_frozen_ffmpeg_kills_it(receiver: ListenReceiver) -> None:
    stream = AudioStream(
        StreamSettings(url=receiver.url),
        supervision=Supervision(stop_timeout=0.3),
    )
    await stream.start()
    publisher = stream.publisher
    assert publisher is not None
    try:
        async with asyncio.timeout(15):
            await stream.wait_available()
        pid = publisher.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
    finally:
        started = time.monotonic()
        await stream.stop()
    # SIGTERM waits for SIGCONT; the stop timeout ends in SIGKILL.
    assert 0.3 <= time.monotonic() - started < 2.0
    assert not psutil.pid_exists(pid)
    assert ffmpeg_children() == []


async def test_a_stable_run_resets_the_back_off(receiver: ListenReceiver) -> None:
    stream = AudioStream(
        StreamSettings(url=receiver.url),
        supervision=Supervision(backoff_initial=0.1, stable_after=0.0),
    )
    await stream.start()
    publisher = stream.publisher
    assert publisher is not None
    try:
        for _ in range(3):
            async with asyncio.timeout(15):
                await stream.wait_available()
            assert publisher.pid is not None
            os.kill(publisher.pid, signal.SIGKILL)
            await until(lambda: not stream.available, 5, "down")
            # Every crash after a stable run meets the initial back-off again.
            assert publisher.retry_delay == 0.1
    finally:
        await stream.stop()
    assert ffmpeg_children() == []
