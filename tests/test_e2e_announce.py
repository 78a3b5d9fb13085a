"""The announce action end to end: speech heard at real RTSP receivers."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from homeassistant.components import tts
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from numpy.typing import NDArray
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.rtsp_announcer.const import EVENT_ANNOUNCEMENT

from .common import (
    add_voice,
    announce,
    ffmpeg_children,
    heard_after,
    make_tone,
    notify,
    play_media,
    record_events,
    speak,
    start_stream,
    state_of,
    unload,
    wait_for_state,
)
from .helpers.analysis import rms_dbfs, rms_windows, tone_segments
from .helpers.rtsp import ListenReceiver
from .helpers.waiting import until
from .voices import ToneVoice

ENTITY = "media_player.hall"
RATE = 24000
WINDOW_MS = 20
SPEECH_DBFS = -45.0
SHORT = "Turn on the kitchen lights."
LONG = " ".join(
    ["The quick brown fox jumps over the lazy dog while the band plays on."] * 6
)


def speech_spans(
    samples: NDArray[np.int16], rate: int = RATE
) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches louder than the silence padding.

    Pauses shorter than 300 ms (between words) are bridged.
    """
    levels = rms_windows(samples, rate, WINDOW_MS)
    loud = [bool(level > SPEECH_DBFS) for level in levels]
    spans: list[tuple[float, float]] = []
    start: int | None = None
    last_loud = 0
    for index, on in enumerate(loud):
        if on:
            if start is not None and (index - last_loud) * WINDOW_MS > 300:
                spans.append(
                    (start * WINDOW_MS / 1000, (last_loud + 1) * WINDOW_MS / 1000)
                )
                start = None
            if start is None:
                start = index
            last_loud = index
    if start is not None:
        spans.append((start * WINDOW_MS / 1000, (last_loud + 1) * WINDOW_MS / 1000))
    return spans


@pytest.fixture
async def voice(hass: HomeAssistant, tmp_path: Path) -> ToneVoice:
    """Another integration's voice, set up: it says 1 s of a 500 Hz tone."""
    mp3 = make_tone(tmp_path / "voice.mp3", freq=500, seconds=1.0)
    voice = ToneVoice("Tone voice", mp3.read_bytes())
    await add_voice(hass, voice)
    return voice


@pytest.fixture
async def stream(
    hass: HomeAssistant, receiver: ListenReceiver
) -> AsyncGenerator[MockConfigEntry]:
    entry = await start_stream(hass, receiver, min_samples=RATE // 2)
    yield entry
    await unload(hass, entry)


@pytest.mark.usefixtures("stream")
async def test_english_message_is_heard(
    hass: HomeAssistant, receiver: ListenReceiver, events: list[dict[str, Any]]
) -> None:
    # Past the start-up burst: the stream has run on for a while.
    await receiver.wait_for_samples(receiver.total_samples + int(0.3 * RATE), 5)
    before = receiver.total_samples
    response = await announce(hass, message=SHORT, language="en")
    result = response[ENTITY]
    assert result["state"] == "finished"
    assert 1.0 < result["duration"] < 2.5
    assert 0 <= result["delay_ms"] < 200
    heard = await heard_after(receiver, before)
    spans = speech_spans(heard)
    assert len(spans) == 1, spans
    start, end = spans[0]
    # Silence before and after the words, and as much speech as was returned.
    assert start > 0.05
    assert len(heard) / RATE - end > 0.3
    # The returned duration also counts espeak's pauses at both ends of the
    # sentence, which are silent at the receiver.
    assert result["duration"] - 0.6 < end - start < result["duration"] + 0.1
    await hass.async_block_till_done()
    assert [e["type"] for e in events] == ["started", "finished"]
    assert events[0]["entity_id"] == ENTITY
    assert events[0]["text"] == SHORT
    assert events[0]["announcement_id"] == result["announcement_id"]


@pytest.mark.usefixtures("stream")
async def test_chinese_message_is_heard(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    before = receiver.total_samples
    response = await announce(hass, message="请四十二号到三号柜台。", language="zh")
    result = response[ENTITY]
    assert result["state"] == "finished"
    assert result["duration"] > 1.0
    spans = speech_spans(await heard_after(receiver, before))
    assert spans
    heard_s = spans[-1][1] - spans[0][0]
    assert result["duration"] - 0.6 < heard_s < result["duration"] + 0.1


@pytest.mark.usefixtures("stream")
async def test_announcements_queue_in_order(
    hass: HomeAssistant, receiver: ListenReceiver, events: list[dict[str, Any]]
) -> None:
    before = receiver.total_samples
    first = await announce(hass, message="First announcement.", wait=False)
    second = await announce(hass, message="Second announcement.", wait=False)
    first_id = first[ENTITY]["announcement_id"]
    second_id = second[ENTITY]["announcement_id"]
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "idle", 10)
    await hass.async_block_till_done()
    order = [(e["announcement_id"], e["type"]) for e in events]
    assert order == [
        (first_id, "started"),
        (first_id, "finished"),
        (second_id, "started"),
        (second_id, "finished"),
    ]
    heard = await heard_after(receiver, before)
    assert len(speech_spans(heard)) >= 2


@pytest.mark.usefixtures("stream")
async def test_high_priority_interrupts(
    hass: HomeAssistant, receiver: ListenReceiver, events: list[dict[str, Any]]
) -> None:
    before = receiver.total_samples
    # Droppable: cut off, it ends (test_e2e_priorities.py has one that resumes).
    long = await announce(hass, message=LONG, wait=False, droppable=True)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
    # Interrupted while it is being heard.
    await until(
        lambda: bool(speech_spans(receiver.samples()[before:])), 5, "the long message"
    )
    urgent = await announce(hass, message="Fire alarm.", priority="high")
    assert urgent[ENTITY]["state"] == "finished"
    await hass.async_block_till_done()
    by_id = {(e["announcement_id"], e["type"]) for e in events}
    assert (long[ENTITY]["announcement_id"], "interrupted") in by_id
    assert (urgent[ENTITY]["announcement_id"], "finished") in by_id
    assert (long[ENTITY]["announcement_id"], "finished") not in by_id
    assert urgent[ENTITY]["delay_ms"] < 300


@pytest.mark.usefixtures("stream")
async def test_wait_false_returns_at_once(hass: HomeAssistant) -> None:
    started = time.monotonic()
    response = await announce(hass, message=LONG, wait=False)
    assert time.monotonic() - started < 0.5
    result = response[ENTITY]
    assert result["state"] in {"queued", "playing"}
    assert result["duration"] is None
    await hass.services.async_call(
        "media_player", "media_stop", {"entity_id": ENTITY}, blocking=True
    )


@pytest.mark.usefixtures("stream")
async def test_chime_precedes_the_words(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    before = receiver.total_samples
    response = await announce(hass, message=SHORT, preannounce=True)
    heard = await heard_after(receiver, before)
    chime = tone_segments(heard, RATE, 880, threshold_db=-40, min_share=0.6)
    assert chime, "the chime's 880 Hz tone never arrived"
    spans = speech_spans(heard)
    # Chime and words form one announcement; the words end after the chime,
    # which is the first 880 Hz stretch (a voiced sound in the words may come
    # close enough to 880 Hz for a few frames).
    assert spans[0][0] <= chime[0][0] + 0.05
    assert spans[-1][1] > chime[0][1] + 1.0
    assert response[ENTITY]["duration"] > 1.0 + 0.8


@pytest.mark.usefixtures("stream")
async def test_volume_scales_the_announcement(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    levels = {}
    for volume in (1.0, 0.1):
        before = receiver.total_samples
        await announce(hass, message=SHORT, volume=volume)
        heard = await heard_after(receiver, before)
        start, end = (
            speech_spans(heard, RATE)[0] if volume == 1.0 else (0, len(heard) / RATE)
        )
        levels[volume] = rms_dbfs(heard[int(start * RATE) : int(end * RATE)])
    # 0.1 is a gain of -40 dB (volume squared); the quieter one also has more
    # silence around it.
    assert levels[1.0] - levels[0.1] > 30, levels


async def test_two_streams_in_one_call(hass: HomeAssistant) -> None:
    async with ListenReceiver(rate=RATE) as hall, ListenReceiver(rate=RATE) as shop:
        first = await start_stream(hass, hall, "Hall", min_samples=RATE // 2)
        second = await start_stream(hass, shop, "Shop", min_samples=RATE // 2)
        marks = (hall.total_samples, shop.total_samples)
        response = await announce(
            hass, ["media_player.hall", "media_player.shop"], message=SHORT
        )
        assert set(response) == {"media_player.hall", "media_player.shop"}
        # The call waited for both, and neither stream waited for the other:
        # both started within a few frames of each other.
        delays = [result["delay_ms"] for result in response.values()]
        assert abs(delays[0] - delays[1]) < 100, response
        for receiver, before in zip((hall, shop), marks, strict=True):
            assert speech_spans(await heard_after(receiver, before))
        for entry in (first, second):
            assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


THREE = ["media_player.one", "media_player.two", "media_player.three"]


@pytest.fixture
async def three_streams(hass: HomeAssistant) -> AsyncGenerator[list[str]]:
    """Three streams, each publishing to its own real receiver."""
    async with (
        ListenReceiver(rate=RATE) as one,
        ListenReceiver(rate=RATE) as two,
        ListenReceiver(rate=RATE) as three,
    ):
        entries = [
            await start_stream(hass, receiver, name, min_samples=RATE // 2)
            for receiver, name in ((one, "One"), (two, "Two"), (three, "Three"))
        ]
        yield THREE
        for entry in entries:
            assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


async def test_concurrent_calls_on_three_streams(
    hass: HomeAssistant, three_streams: list[str]
) -> None:
    calls = [
        announce(hass, three_streams[index % 3], message=f"Number {index}.")
        for index in range(20)
    ]
    results = await asyncio.wait_for(
        asyncio.gather(*calls, return_exceptions=True), timeout=60
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, HomeAssistantError) for e in errors), errors
    finished = [
        r
        for r in results
        if isinstance(r, dict) and next(iter(r.values()))["state"] == "finished"
    ]
    assert len(finished) + len(errors) == 20
    assert len(finished) >= 18


async def test_loop_lag_while_three_streams_speak(
    hass: HomeAssistant, three_streams: list[str]
) -> None:
    await announce(hass, three_streams, message=" ".join([LONG] * 3), wait=False)
    lags = []
    loop = asyncio.get_running_loop()
    for _ in range(300):
        before = loop.time()
        await asyncio.sleep(0.01)
        lags.append((loop.time() - before - 0.01) * 1000)
    lags.sort()
    p99 = lags[int(len(lags) * 0.99)]
    # Generous: the test plugin runs the loop in debug mode on a shared machine.
    assert p99 < 60, f"loop lag p99 {p99:.1f} ms, median {statistics.median(lags):.1f}"
    for entity_id in three_streams:
        await hass.services.async_call(
            "media_player", "media_stop", {"entity_id": entity_id}, blocking=True
        )


@pytest.mark.usefixtures("stream")
async def test_notify_speaks(
    hass: HomeAssistant, receiver: ListenReceiver, events: list[dict[str, Any]]
) -> None:
    before = receiver.total_samples
    await notify(hass, "The washing is done.")
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "idle", 10)
    assert speech_spans(await heard_after(receiver, before))
    await hass.async_block_till_done()
    assert events[0]["text"] == "The washing is done."


@pytest.mark.usefixtures("stream")
async def test_tts_speak_to_the_stream(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    before = receiver.total_samples
    await speak(hass, "tts.hall_local_voice", SHORT)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
    assert hass.states.get(ENTITY).attributes["media_title"] == SHORT  # type: ignore[union-attr]
    await wait_for_state(hass, ENTITY, lambda s: s.state == "idle", 10)
    assert speech_spans(await heard_after(receiver, before))


async def test_any_tts_entity_as_the_voice(
    hass: HomeAssistant, receiver: ListenReceiver, voice: ToneVoice
) -> None:
    entry = await start_stream(hass, receiver, min_samples=RATE // 2)
    before = receiver.total_samples
    response = await announce(
        hass, message="Dinner is ready.", tts_entity_id="tts.tone_voice"
    )
    assert response[ENTITY]["state"] == "finished"
    assert response[ENTITY]["duration"] == pytest.approx(1.0, abs=0.15)
    assert voice.messages == ["Dinner is ready."]
    heard = await heard_after(receiver, before)
    segments = tone_segments(heard, RATE, 500, max_gap_ms=60)
    assert segments
    assert segments[-1][1] - segments[0][0] == pytest.approx(1.0, abs=0.15)
    await unload(hass, entry)


async def test_tts_speak_with_another_voice(
    hass: HomeAssistant, receiver: ListenReceiver, voice: ToneVoice
) -> None:
    entry = await start_stream(hass, receiver, min_samples=RATE // 2)
    before = receiver.total_samples
    await speak(hass, "tts.tone_voice", "Dinner is ready.")
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
    assert state_of(hass, ENTITY).attributes["media_title"] == "Dinner is ready."
    await wait_for_state(hass, ENTITY, lambda s: s.state == "idle", 10)
    assert voice.messages == ["Dinner is ready."]
    segments = tone_segments(await heard_after(receiver, before), RATE, 500)
    assert segments
    assert segments[-1][1] - segments[0][0] == pytest.approx(1.0, abs=0.15)
    await unload(hass, entry)


@pytest.mark.parametrize("engine", ["tts.tone_voice", "tts.hall_local_voice"])
async def test_a_tts_result_stream_is_played(
    hass: HomeAssistant, receiver: ListenReceiver, voice: ToneVoice, engine: str
) -> None:
    # What assist pipelines and satellite announcements hand a media player:
    # the id of a result stream created and given its message beforehand.
    entry = await start_stream(hass, receiver, min_samples=RATE // 2)
    result = tts.async_create_stream(hass, engine, language="en")
    result.async_set_message(SHORT)
    media_id = f"media-source://tts/-stream-/{result.token}"
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    before = receiver.total_samples
    await play_media(hass, media_id, announce=True)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "idle", 10)
    heard = await heard_after(receiver, before)
    if engine == "tts.tone_voice":
        assert voice.messages == [SHORT]
        assert tone_segments(heard, RATE, 500)
    else:
        assert voice.messages == []
        assert speech_spans(heard)
    await hass.async_block_till_done()
    assert [event.data["type"] for event in events] == ["started", "finished"]
    await unload(hass, entry)


@pytest.mark.usefixtures("stream")
async def test_the_local_voice_of_tts_speak_is_spoken_directly(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    # No TTS result stream (HTTP, MP3 and back): the local engine speaks it.
    with patch.object(
        tts, "async_create_stream", wraps=tts.async_create_stream
    ) as create_stream:
        await hass.services.async_call(
            "tts",
            "speak",
            {
                "entity_id": "tts.hall_local_voice",
                "media_player_entity_id": ENTITY,
                "message": SHORT,
                "options": {"rate": 200},
            },
            blocking=True,
        )
        await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
        await wait_for_state(hass, ENTITY, lambda s: s.state == "idle", 10)
    assert create_stream.call_count == 0


@pytest.mark.usefixtures("stream")
@pytest.mark.parametrize(
    "media_id",
    [
        "media-source://tts/tts.hall_local_voice?language=en",
        "media-source://tts/tts.hall_local_voice?message=Hi&tts_options=%7Bnope",
        "media-source://tts/-stream-/no-such-token.mp3",
    ],
)
async def test_a_malformed_tts_media_id_is_refused(
    hass: HomeAssistant, media_id: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await play_media(hass, media_id)
    assert err.value.translation_key == "decode_failed"
    assert err.value.translation_placeholders is not None
    assert err.value.translation_placeholders["media_id"] == media_id
