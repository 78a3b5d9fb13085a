"""Priorities, repetition and the stream's announcement defaults, without a server.

The stream is down (nothing listens on its port): plans are made and their
audio produced all the same, and the queue is read by hand.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
import voluptuous as vol
from homeassistant.components.media_player import DOMAIN as MEDIA_PLAYER_DOMAIN
from homeassistant.components.tts import TextToSpeechEntity, TtsAudioType
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_component import EntityComponent
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.announce import (
    DEFAULT_CHIME,
    Announcer,
    AnnounceRequest,
    Priority,
    announcement_gain,
    response_for,
)
from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.playback import (
    PRIORITY_HIGH,
    PRIORITY_NORMAL,
    PlaybackItem,
    PlaybackQueue,
)
from custom_components.rtsp_announcer.const import EVENT_ANNOUNCEMENT
from custom_components.rtsp_announcer.media_player import RtspStreamMediaPlayer
from custom_components.rtsp_announcer.services import ANNOUNCE_SCHEMA, request_from

from .common import DEAD_URL, add_entry, add_voice, make_tone, record_events

ENTITY = "media_player.hall"
SOUNDS = str(Path(DEFAULT_CHIME).parent)


async def start(hass: HomeAssistant, options: dict[str, object]) -> MockConfigEntry:
    hass.config.allowlist_external_dirs.add(SOUNDS)
    entry = add_entry(hass, DEAD_URL)
    hass.config_entries.async_update_entry(entry, options=options)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
async def entry(hass: HomeAssistant) -> AsyncGenerator[MockConfigEntry]:
    entry = await start(hass, {})
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def tuned(hass: HomeAssistant) -> AsyncGenerator[MockConfigEntry]:
    """A stream whose options change every announcement default."""
    entry = await start(
        hass,
        {
            opt.GAIN_DB.key: -12.0,
            opt.REPEAT.key: 2,
            opt.PREANNOUNCE.key: False,
            opt.LEAD_IN.key: 0.5,
        },
    )
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


def announcer_of(entry: MockConfigEntry) -> Announcer:
    announcer: Announcer = entry.runtime_data.announcer
    return announcer


async def produce(announcer: Announcer, request: AnnounceRequest) -> np.ndarray:
    """All the audio the announcement's parts feed, in order."""
    plan = await announcer.async_plan(request)
    item = PlaybackItem(sample_rate=24000, buffer_seconds=60)
    for part in plan.parts:
        assert await part(item) is not False
    item.end()
    pcm = item.take(item.buffered_bytes)
    assert pcm is not None
    return np.frombuffer(pcm, dtype="<i2")


def loud_spans(samples: np.ndarray, rate: int = 24000) -> list[tuple[float, float]]:
    """(start, end) seconds of the stretches that are not digital silence."""
    loud = np.flatnonzero(samples)
    if not loud.size:
        return []
    breaks = np.flatnonzero(np.diff(loud) > rate // 100)
    starts = [loud[0], *loud[breaks + 1]]
    ends = [*loud[breaks], loud[-1]]
    return [(s / rate, (e + 1) / rate) for s, e in zip(starts, ends, strict=True)]


def test_gain_in_db_is_one_multiplication() -> None:
    assert announcement_gain(1.0, 0.0) == 1.0
    assert announcement_gain(0.5, -12.0) == pytest.approx(0.25 * 0.2512, rel=1e-3)
    assert announcement_gain(1.0, 12.0) == pytest.approx(3.981, rel=1e-3)


async def test_repeat_with_lead_in_and_gaps(entry: MockConfigEntry) -> None:
    samples = await produce(
        announcer_of(entry),
        AnnounceRequest(
            media_id=DEFAULT_CHIME,
            preannounce=False,
            lead_in=0.2,
            repeat=3,
            repeat_gap=0.5,
        ),
    )
    spans = loud_spans(samples)
    assert len(spans) == 3
    assert spans[0][0] == pytest.approx(0.2, abs=0.01)
    gaps = [spans[i + 1][0] - spans[i][1] for i in range(2)]
    assert gaps == pytest.approx([0.5, 0.5], abs=0.01)


async def test_the_chime_before_each_repetition_only_if_asked(
    entry: MockConfigEntry,
) -> None:
    announcer = announcer_of(entry)
    request = AnnounceRequest(
        media_id=DEFAULT_CHIME, preannounce=True, repeat=2, repeat_gap=0.3
    )
    once = await announcer.async_plan(request)
    each = await announcer.async_plan(
        AnnounceRequest(
            media_id=DEFAULT_CHIME,
            preannounce=True,
            repeat=2,
            repeat_gap=0.3,
            repeat_preannounce=True,
        )
    )
    # chime, media, gap, media / chime, media, gap, chime, media
    assert (len(once.parts), len(each.parts)) == (4, 5)


async def test_stream_defaults_apply_and_a_call_overrides_each(
    tuned: MockConfigEntry,
) -> None:
    announcer = announcer_of(tuned)
    plan = await announcer.async_plan(AnnounceRequest(media_id=DEFAULT_CHIME))
    assert plan.gain == pytest.approx(10 ** (-12 / 20))
    # lead-in, media, gap, media: no chime, two repetitions.
    assert len(plan.parts) == 4
    samples = await produce(announcer, AnnounceRequest(media_id=DEFAULT_CHIME))
    assert loud_spans(samples)[0][0] == pytest.approx(0.5, abs=0.01)

    plan = await announcer.async_plan(
        AnnounceRequest(
            media_id=DEFAULT_CHIME,
            gain_db=0.0,
            volume=0.5,
            repeat=1,
            lead_in=0.0,
            preannounce=True,
        )
    )
    assert plan.gain == 0.25  # volume 0.5 is -12 dB
    assert len(plan.parts) == 2


async def test_priorities_reach_the_queue(entry: MockConfigEntry) -> None:
    announcer = announcer_of(entry)
    for priority, rank, droppable in (
        (Priority.NORMAL, PRIORITY_NORMAL, False),
        (Priority.HIGH, PRIORITY_HIGH, True),
    ):
        plan = await announcer.async_plan(
            AnnounceRequest(
                media_id=DEFAULT_CHIME,
                preannounce=False,
                priority=priority,
                droppable=droppable,
            )
        )
        item = announcer.enqueue(plan)
        assert (item.priority, item.resumable) == (rank, not droppable)
    assert Priority.CRITICAL.rank > Priority.HIGH.rank > Priority.NORMAL.rank
    announcer.stream.stop_playback()


@pytest.mark.parametrize(("announce", "rank"), [(True, PRIORITY_HIGH), (False, 0)])
async def test_play_media_announce_cuts_in(
    hass: HomeAssistant, entry: MockConfigEntry, announce: bool, rank: int
) -> None:
    component: EntityComponent[RtspStreamMediaPlayer] = hass.data[MEDIA_PLAYER_DOMAIN]
    player = component.get_entity(ENTITY)
    assert player is not None
    announcer = announcer_of(entry)
    with patch.object(announcer, "enqueue", wraps=announcer.enqueue) as enqueue:
        await player.async_play_media("music", DEFAULT_CHIME, announce=announce)
    plan = enqueue.call_args.args[0]
    assert plan.priority.rank == rank
    # No chime, one repetition: the media only.
    assert len(plan.parts) == 1
    entry.runtime_data.stream.stop_playback()


async def test_events_and_responses_say_who_cut_off_whom(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    announcer = announcer_of(entry)
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    queue = PlaybackQueue(on_change=announcer.item_changed)
    first = PlaybackItem(sample_rate=8000, title="A")
    urgent = PlaybackItem(sample_rate=8000, title="B", priority=PRIORITY_HIGH)
    for item in (first, urgent):
        await item.feed(bytes(640))
        item.end()
    queue.add(first)
    queue.read(160)
    queue.add(urgent)
    while queue.read(160) is not None:
        pass
    await hass.async_block_till_done()
    seen = [
        (
            event.data["text"],
            event.data["type"],
            event.data.get("interrupted"),
            event.data.get("interrupted_by"),
        )
        for event in events
    ]
    assert seen == [
        ("A", "started", None, None),
        ("A", "suspended", None, urgent.id),
        ("B", "started", [first.id], None),
        ("B", "finished", [first.id], None),
        ("A", "resumed", None, urgent.id),
        ("A", "finished", None, urgent.id),
    ]
    response = response_for(first, 0.0)
    assert response["state"] == "finished"
    assert (response["interrupted_by"], response["resumed"]) == ([urgent.id], 1)
    assert response_for(urgent, 0.0)["interrupted"] == [first.id]


@pytest.mark.parametrize(
    "data",
    [
        {"repeat": 0},
        {"repeat": 11},
        {"repeat_gap": -0.1},
        {"repeat_gap": 61},
        {"gain_db": -31},
        {"gain_db": 12.5},
        {"lead_in": 5.5},
        {"priority": "urgent"},
        {"droppable": "sometimes"},
    ],
)
def test_schema_refuses_fields_out_of_range(data: dict[str, object]) -> None:
    with pytest.raises(vol.Invalid):
        ANNOUNCE_SCHEMA({"entity_id": ENTITY, "message": "hi", **data})


def test_a_call_leaves_the_defaults_to_the_stream() -> None:
    request = request_from(ANNOUNCE_SCHEMA({"entity_id": ENTITY, "message": "hi"}))
    assert request.preannounce is None
    assert (request.lead_in, request.gain_db, request.repeat) == (None, None, None)
    assert (request.repeat_gap, request.repeat_preannounce) == (1.0, False)
    assert request.droppable is False
    request = request_from(
        ANNOUNCE_SCHEMA(
            {
                "entity_id": ENTITY,
                "message": "hi",
                "preannounce": False,
                "priority": "critical",
                "repeat": "3",
                "repeat_gap": 0.25,
                "repeat_preannounce": True,
                "gain_db": -6,
                "lead_in": 0.3,
                "droppable": True,
            }
        )
    )
    assert request.priority is Priority.CRITICAL
    assert (request.repeat, request.repeat_gap, request.gain_db) == (3, 0.25, -6.0)
    assert (request.preannounce, request.lead_in, request.droppable) == (
        False,
        0.3,
        True,
    )


class TwoLanguageVoice(TextToSpeechEntity):
    """Another engine: a tone whatever the text; it notes the language asked."""

    _attr_name = "Tone voice"
    _attr_default_language = "en"

    def __init__(self, audio: bytes) -> None:
        self._attr_supported_languages = ["en", "de"]
        self._audio = audio
        self.asked: list[tuple[str, str]] = []

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> TtsAudioType:
        self.asked.append((message, language))
        return "mp3", self._audio


async def test_each_repetition_is_spoken_in_the_call_language(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    tone = make_tone(tmp_path / "tone.mp3", freq=500, seconds=0.3)
    voice = TwoLanguageVoice(tone.read_bytes())
    await add_voice(hass, voice)
    entry = await start(hass, {})
    samples = await produce(
        announcer_of(entry),
        AnnounceRequest(
            message="Guten Tag.",
            tts_entity_id="tts.tone_voice",
            language="de",
            preannounce=False,
            repeat=2,
            repeat_gap=0.2,
        ),
    )
    # The repetition asks for the same words in the same language: Home
    # Assistant's cache answers it (in English the engine would be asked again).
    assert voice.asked == [("Guten Tag.", "de")]
    assert len(loud_spans(samples)) == 2
    assert await hass.config_entries.async_unload(entry.entry_id)
