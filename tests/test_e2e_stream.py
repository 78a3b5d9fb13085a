"""The stream end to end: real ffmpeg publishing to real RTSP servers and readers.

Nothing here is mocked: the integration's own ffmpeg publishes to ffmpeg's RTSP
listener (TCP) or to the rtsp-server-perl relay (UDP) read by a separate ffmpeg.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from homeassistant.components.media_player.const import (
    DOMAIN as MP_DOMAIN,
)
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_MEDIA_STOP,
    SERVICE_VOLUME_MUTE,
    SERVICE_VOLUME_SET,
    STATE_IDLE,
    STATE_PLAYING,
)
from homeassistant.core import HomeAssistant

from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.transport import FifoFeed

from .common import (
    add_entry,
    ffmpeg_children,
    make_tone,
    play_media,
    state_of,
    wait_available,
    wait_for_state,
    wait_unavailable,
)
from .helpers.analysis import (
    continuity,
    dominant_frequency,
    first_onset,
    rms_dbfs,
    tone_segments,
)
from .helpers.rtsp import ListenReceiver, Reader, RelayServer
from .helpers.waiting import until

ENTITY = "media_player.hall"
RATE = 24000


@pytest.fixture
def media_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    hass.config.allowlist_external_dirs = {str(media)}
    return media


@pytest.mark.parametrize(
    ("transport", "codec"),
    [
        ("socket", "aac"),
        ("fifo", "aac"),
        ("pipe", "aac"),
        ("socket", "pcm_mulaw"),
        ("pipe", "pcm_alaw"),
    ],
)
async def test_silence_then_tone_over_tcp(
    hass: HomeAssistant, media_dir: Path, transport: str, codec: str
) -> None:
    tone = make_tone(media_dir / "tone.wav", freq=1000, seconds=1.0)
    async with ListenReceiver(rate=RATE) as receiver:
        entry = add_entry(
            hass,
            receiver.url,
            **{opt.PCM_TRANSPORT.key: transport, opt.CODEC.key: codec},
        )
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        assert state_of(hass, ENTITY).state == STATE_IDLE
        session = await receiver.wait_for_session(1, timeout=10)

        # The stream flows continuously in real time while nothing is said.
        # The first half second is left out: what waited in the transport while
        # ffmpeg connected arrives there in one burst.
        start = time.monotonic()
        await asyncio.sleep(4.5)
        settled = [a for a in session.arrivals if a[0] >= start + 0.5]
        measured = continuity(settled, RATE)
        assert measured.wall_s > 3.5
        assert measured.ratio == pytest.approx(1.0, abs=0.02), measured
        assert measured.max_gap_s < 0.3, measured
        silence = receiver.samples()[-RATE:]
        assert rms_dbfs(silence) < -60

        before = receiver.total_samples
        await play_media(hass, str(tone))
        await wait_for_state(hass, ENTITY, lambda s: s.state == STATE_PLAYING, 5)
        assert state_of(hass, ENTITY).attributes["media_title"] == str(tone)
        await wait_for_state(hass, ENTITY, lambda s: s.state == STATE_IDLE, 5)
        await receiver.wait_for_samples(receiver.total_samples + RATE // 2, timeout=5)
        heard = receiver.samples()[before:]
        segments = tone_segments(heard, RATE, 1000, max_gap_ms=40)
        assert len(segments) == 1, segments
        seg_start, seg_end = segments[0]
        assert seg_end - seg_start == pytest.approx(1.0, abs=0.1)
        tone_part = heard[int(seg_start * RATE) : int(seg_end * RATE)]
        assert dominant_frequency(tone_part, RATE) == pytest.approx(1000, abs=10)
        assert time.monotonic() - start < 20

        assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


@pytest.mark.parametrize("transport", ["socket", "fifo"])
async def test_killed_ffmpeg_comes_back(hass: HomeAssistant, transport: str) -> None:
    async with ListenReceiver(rate=RATE) as receiver:
        entry = add_entry(hass, receiver.url, **{opt.PCM_TRANSPORT.key: transport})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        await receiver.wait_for_session(1, timeout=10)
        publisher = entry.runtime_data.stream.publisher
        assert publisher is not None
        pid = publisher.pid
        assert pid is not None

        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        await wait_unavailable(hass, ENTITY, timeout=2)
        assert time.monotonic() - killed_at < 2
        await wait_available(hass, ENTITY, timeout=10)
        assert publisher.pid != pid
        assert publisher.restarts == 1
        # The reader side resumes: a second publisher session delivers audio.
        await receiver.wait_for_session(2, timeout=10, min_samples=RATE // 2)
        stream = entry.runtime_data.stream
        assert stream.transport.value == transport
        feed = stream.feed
        if isinstance(feed, FifoFeed):
            # The new ffmpeg opened the FIFO again and is fed through it.
            assert feed.connections == 2
            assert feed.connected
        fifo_dir = None if feed is None else feed.path.parent
        assert await hass.config_entries.async_unload(entry.entry_id)
        assert fifo_dir is not None
        assert not fifo_dir.exists()
    assert ffmpeg_children() == []


async def test_server_going_away_and_coming_back(hass: HomeAssistant) -> None:
    receiver = ListenReceiver(rate=RATE)
    await receiver.start()
    try:
        entry = add_entry(hass, receiver.url)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        await receiver.wait_for_session(1, timeout=10)

        await receiver.stop()
        await wait_unavailable(hass, ENTITY, timeout=2)
        await asyncio.sleep(1.0)
        assert state_of(hass, ENTITY).state == "unavailable"

        await receiver.start()
        await wait_available(hass, ENTITY, timeout=15)
        await receiver.wait_for_session(2, timeout=10)
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await receiver.stop()
    assert ffmpeg_children() == []


async def test_relay_with_udp_and_a_separate_reader(
    hass: HomeAssistant, media_dir: Path
) -> None:
    tone = make_tone(media_dir / "tone.wav", freq=700, seconds=1.5)
    async with RelayServer() as relay:
        entry = add_entry(hass, relay.publish_url, **{opt.RTSP_TRANSPORT.key: "udp"})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        async with Reader(relay.read_url, rate=RATE) as reader:
            await reader.wait_for_samples(RATE, timeout=15)
            before = reader.total_samples
            await play_media(hass, str(tone))
            await wait_for_state(hass, ENTITY, lambda s: s.state == STATE_PLAYING, 5)
            await wait_for_state(hass, ENTITY, lambda s: s.state == STATE_IDLE, 5)
            await reader.wait_for_samples(reader.total_samples + RATE // 2, timeout=5)
            heard = reader.samples()[before:]
            segments = tone_segments(heard, RATE, 700, max_gap_ms=60)
            assert segments, "the tone never reached the reader"
            longest = max(end - start for start, end in segments)
            assert longest == pytest.approx(1.5, abs=0.15)
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


def tone_onset(receiver: ListenReceiver, since: int) -> int | None:
    """Index (into all samples) of the first loud window after `since`."""
    start = first_onset(receiver.samples()[since:], RATE, -40.0)
    return None if start is None else since + round(start * RATE)


async def test_volume_mute_and_stop(hass: HomeAssistant, media_dir: Path) -> None:
    tone = make_tone(media_dir / "long.wav", freq=1000, seconds=5.0)
    async with ListenReceiver(rate=RATE) as receiver:
        entry = add_entry(hass, receiver.url)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        await hass.services.async_call(
            MP_DOMAIN,
            SERVICE_VOLUME_SET,
            {ATTR_ENTITY_ID: ENTITY, "volume_level": 0.5},
            blocking=True,
        )
        assert state_of(hass, ENTITY).attributes["volume_level"] == 0.5
        before = receiver.total_samples
        await play_media(hass, str(tone))
        await wait_for_state(hass, ENTITY, lambda s: s.state == STATE_PLAYING, 5)
        # Half a second of the tone, from a window past its onset.
        await until(lambda: tone_onset(receiver, before) is not None, 5, "the tone")
        onset = tone_onset(receiver, before)
        assert onset is not None
        await receiver.wait_for_samples(onset + RATE // 50 + RATE // 2, timeout=5)
        loud = receiver.samples()[-RATE // 2 :]
        await hass.services.async_call(
            MP_DOMAIN,
            SERVICE_VOLUME_MUTE,
            {ATTR_ENTITY_ID: ENTITY, "is_volume_muted": True},
            blocking=True,
        )
        assert state_of(hass, ENTITY).attributes["is_volume_muted"] is True
        # Within 3 s, long before the 5 s tone ends: only the mute can be silent.
        await until(
            lambda: rms_dbfs(receiver.samples()[-RATE // 2 :]) < -80, 3, "silence"
        )
        muted = receiver.samples()[-RATE // 2 :]
        # Half volume is a quarter of the amplitude (squared curve): about -12 dB
        # under full scale of the 0.125-amplitude tone, muted is digital silence.
        assert rms_dbfs(loud) == pytest.approx(
            20 * np.log10(0.125 / np.sqrt(2) * 0.25), abs=2
        )
        assert rms_dbfs(muted) < -80
        await hass.services.async_call(
            MP_DOMAIN, SERVICE_MEDIA_STOP, {ATTR_ENTITY_ID: ENTITY}, blocking=True
        )
        await wait_for_state(hass, ENTITY, lambda s: s.state == STATE_IDLE, 2)
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []
