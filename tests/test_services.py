"""The announce action: whom it targets, what it returns and how it fails.

Most streams here point at a port nothing listens on: they stay unavailable,
which is enough for targeting and queueing (without waiting). Failures that a
waiting caller must see use a real RTSP server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.tts import TextToSpeechEntity
from homeassistant.components.tts.entity import TTSAudioRequest, TTSAudioResponse
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.rtsp_announcer.announce import (
    Announcer,
    AnnounceRequest,
    Plan,
)
from custom_components.rtsp_announcer.audio.decoder import decode_to
from custom_components.rtsp_announcer.audio.exceptions import SpeechEngineError
from custom_components.rtsp_announcer.audio.playback import ItemState, PlaybackItem
from custom_components.rtsp_announcer.const import DOMAIN, EVENT_ANNOUNCEMENT

from .common import (
    add_entry,
    add_voice,
    ffmpeg_children,
    make_tone,
    record_events,
    wait_available,
)
from .helpers.rtsp import ListenReceiver

HALL = "media_player.hall"
PORCH = "media_player.porch"
DEAD_URL = "rtsp://127.0.0.1:9/announce"
RATE = 24000


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
async def hall(hass: HomeAssistant) -> AsyncGenerator[MockConfigEntry]:
    entry = await set_up(hass, add_entry(hass, DEAD_URL, name="Hall"))
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def porch(
    hass: HomeAssistant, hall: MockConfigEntry
) -> AsyncGenerator[MockConfigEntry]:
    entry = await set_up(hass, add_entry(hass, DEAD_URL, name="Porch"))
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def receiver() -> AsyncGenerator[ListenReceiver]:
    async with ListenReceiver(rate=RATE) as receiver:
        yield receiver


@pytest.fixture
async def live(
    hass: HomeAssistant, receiver: ListenReceiver
) -> AsyncGenerator[MockConfigEntry]:
    """A stream that publishes to a real RTSP server."""
    entry = add_entry(hass, receiver.url, name="Hall")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, HALL)
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


async def announce_to(
    hass: HomeAssistant, target: dict[str, Any], **data: Any
) -> dict[str, Any]:
    data.setdefault("preannounce", False)
    response = await hass.services.async_call(
        DOMAIN, "announce", {**target, **data}, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


def items_of(entry: MockConfigEntry) -> list[PlaybackItem]:
    queue = entry.runtime_data.stream.queue
    head = [] if queue.current is None else [queue.current]
    return [*head, *queue._items]


def error_of(err: HomeAssistantError) -> str:
    placeholders = err.translation_placeholders
    assert placeholders is not None
    return placeholders["error"]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    msg = "condition never held"
    raise AssertionError(msg)


def device_of(hass: HomeAssistant, entry: MockConfigEntry) -> dr.DeviceEntry:
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return device


async def test_a_device_target_announces_on_its_stream(
    hass: HomeAssistant, hall: MockConfigEntry, porch: MockConfigEntry
) -> None:
    # The device also has the voice and notify entities: they are not streams,
    # but they came with the device, so they are passed over, not refused.
    response = await announce_to(
        hass, {"device_id": device_of(hass, hall).id}, message="Hello", wait=False
    )
    assert list(response) == [HALL]
    assert response[HALL]["state"] == "queued"
    assert [item.id for item in items_of(hall)] == [response[HALL]["announcement_id"]]
    assert items_of(porch) == []


async def test_an_area_target_skips_what_is_not_a_stream(
    hass: HomeAssistant, hall: MockConfigEntry, porch: MockConfigEntry
) -> None:
    garden = ar.async_get(hass).async_create("Garden")
    dr.async_get(hass).async_update_device(device_of(hass, hall).id, area_id=garden.id)
    entities = er.async_get(hass)
    speaker = entities.async_get_or_create("media_player", "cast", "garden-speaker")
    entities.async_update_entity(speaker.entity_id, area_id=garden.id)
    response = await announce_to(
        hass, {"area_id": garden.id}, message="Rain is coming", wait=False
    )
    assert list(response) == [HALL]
    assert len(items_of(hall)) == 1
    assert items_of(porch) == []
    # Named explicitly, the same foreign speaker is an error.
    with pytest.raises(ServiceValidationError) as err:
        await announce_to(
            hass, {"entity_id": [HALL, speaker.entity_id]}, message="Hi", wait=False
        )
    assert err.value.translation_key == "invalid_target"
    assert len(items_of(hall)) == 1


async def test_a_stream_that_is_not_loaded_is_refused(
    hass: HomeAssistant, hall: MockConfigEntry, porch: MockConfigEntry
) -> None:
    assert await hass.config_entries.async_unload(hall.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await announce_to(hass, {"entity_id": [HALL, PORCH]}, message="Hi", wait=False)
    assert err.value.translation_key == "stream_not_loaded"
    assert err.value.translation_placeholders == {"entity_id": HALL}
    # Nothing was queued on the stream that is loaded either.
    assert items_of(porch) == []


async def test_without_return_response_the_call_returns_nothing(
    hass: HomeAssistant, hall: MockConfigEntry
) -> None:
    result = await hass.services.async_call(
        DOMAIN,
        "announce",
        {"entity_id": HALL, "message": "Hello", "preannounce": False, "wait": False},
        blocking=True,
    )
    assert result is None
    assert len(items_of(hall)) == 1


async def test_a_queue_filled_meanwhile_takes_the_whole_call_back(
    hass: HomeAssistant, hall: MockConfigEntry, porch: MockConfigEntry
) -> None:
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    announcer: Announcer = porch.runtime_data.announcer
    stream = porch.runtime_data.stream
    plan_for_porch = announcer.async_plan

    async def plan_while_others_fill_the_queue(request: AnnounceRequest) -> Plan:
        # Planning awaits speech and media; other calls run meanwhile.
        plan = await plan_for_porch(request)
        while len(stream.queue) < stream.queue.max_items:
            stream.queue.add(stream.new_item(title="someone else's"))
        return plan

    with (
        patch.object(announcer, "async_plan", plan_while_others_fill_the_queue),
        pytest.raises(HomeAssistantError) as err,
    ):
        await announce_to(hass, {"entity_id": [HALL, PORCH]}, message="Hi", wait=False)
    assert err.value.translation_key == "queue_full"
    assert err.value.translation_placeholders == {
        "entity_id": PORCH,
        "limit": str(stream.queue.max_items),
    }
    # The hall had its item already: it is taken back, so the call that
    # failed plays nowhere.
    assert items_of(hall) == []
    await hass.async_block_till_done()
    assert [event.data["type"] for event in events] == ["interrupted"]
    assert events[0].data["entity_id"] == HALL
    assert all(item.title == "someone else's" for item in items_of(porch))


async def test_a_cached_chime_is_decoded_once(
    hass: HomeAssistant, hall: MockConfigEntry
) -> None:
    announcer = hall.runtime_data.announcer
    stream = hall.runtime_data.stream
    request = AnnounceRequest(message="Hi", wait=False)
    with patch(
        "custom_components.rtsp_announcer.announce.decode_to", wraps=decode_to
    ) as decoder:
        chime = (await announcer.async_plan(request)).parts[0]
        first = stream.new_item()
        assert await chime(first) is True
        again = (await announcer.async_plan(request)).parts[0]
        second = stream.new_item()
        assert await again(second) is True
        assert decoder.call_count == 1
    # 0.9 s of chime, the same samples both times.
    assert first.buffered_bytes == pytest.approx(0.9 * RATE * 2, rel=0.02)
    assert bytes(second._buffer) == bytes(first._buffer)
    # An announcement stopped before its chime was fed gets none of it.
    stopped = stream.new_item()
    stopped.close(ItemState.CANCELLED)
    assert await again(stopped) is False
    assert stopped.buffered_bytes == 0


# ------------------------------------------------------------ failures a caller sees


async def test_media_that_cannot_be_decoded_fails_the_call(
    hass: HomeAssistant, live: MockConfigEntry, tmp_path: Path
) -> None:
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    notes = tmp_path / "notes.mp3"
    notes.write_text("not a sound\n" * 100)
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    with pytest.raises(HomeAssistantError) as err:
        await announce_to(hass, {"entity_id": HALL}, media_id=str(notes))
    assert err.value.translation_key == "announcement_failed"
    error = error_of(err.value)
    # ffmpeg's own words, after the file's name.
    assert error.startswith(f"{notes}: ")
    # Reported when the clock next reads the queue.
    await until(lambda: bool(events))
    assert events[0].data["type"] == "failed"
    assert events[0].data["error"] == error
    assert items_of(live) == []
    assert live.runtime_data.stream.available


class BreakingVoice(TextToSpeechEntity):
    """A streaming TTS engine that sends half its audio, then fails."""

    _attr_name = "Breaking voice"
    _attr_default_language = "en"
    _attr_supported_languages = ["en"]  # noqa: RUF012

    def __init__(self, audio: bytes) -> None:
        self._audio = audio

    async def async_stream_tts_audio(
        self, request: TTSAudioRequest
    ) -> TTSAudioResponse:
        message = "".join([chunk async for chunk in request.message_gen])
        assert message == "Dinner is ready."
        half = self._audio[: len(self._audio) // 2]

        async def audio() -> AsyncGenerator[bytes]:
            for start in range(0, len(half), 4096):
                yield half[start : start + 4096]
                await asyncio.sleep(0)
            msg = "the voice service went away"
            raise HomeAssistantError(msg)

        return TTSAudioResponse("mp3", audio())


async def test_a_tts_entity_failing_midway_fails_the_call(
    hass: HomeAssistant, live: MockConfigEntry, tmp_path: Path
) -> None:
    mp3 = make_tone(tmp_path / "voice.mp3", freq=500, seconds=2.0)
    await add_voice(hass, BreakingVoice(mp3.read_bytes()))
    with pytest.raises(HomeAssistantError) as err:
        await announce_to(
            hass,
            {"entity_id": HALL},
            message="Dinner is ready.",
            tts_entity_id="tts.breaking_voice",
        )
    assert err.value.translation_key == "announcement_failed"
    assert error_of(err.value) == ("the TTS entity failed: the voice service went away")
    # Whether the half that arrived was heard depends on when the clock read
    # it; either way the queue moves on.
    await until(lambda: not items_of(live))
    assert live.runtime_data.stream.available


async def test_the_local_voice_failing_midway_fails_the_call(
    hass: HomeAssistant, live: MockConfigEntry
) -> None:
    engine = live.runtime_data.speech.engine
    speak = engine.stream

    def breaks_after_a_word(text: str, **kwargs: Any) -> AsyncIterator[bytes]:
        async def words() -> AsyncIterator[bytes]:
            async with aclosing(speak(text, **kwargs)) as audio:
                async for pcm in audio:
                    yield pcm
                    msg = "espeak crashed"
                    raise SpeechEngineError(msg)

        return words()

    with (
        patch.object(engine, "stream", breaks_after_a_word),
        pytest.raises(HomeAssistantError) as err,
    ):
        await announce_to(hass, {"entity_id": HALL}, message="Hello there.")
    assert err.value.translation_key == "announcement_failed"
    assert error_of(err.value) == "The local voice failed: espeak crashed"
    # A failure is not remembered as the sentence's audio.
    response = await announce_to(hass, {"entity_id": HALL}, message="Hello there.")
    assert response[HALL]["state"] == "finished"
    assert response[HALL]["duration"] > 0.5


async def test_each_state_of_an_announcement_is_reported_once(
    hass: HomeAssistant, hall: MockConfigEntry
) -> None:
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    announcer: Announcer = hall.runtime_data.announcer
    item = hall.runtime_data.stream.new_item(title="Hello")
    item.tags["entity_id"] = HALL
    # Queued is no news: the call's response already says so.
    announcer.item_changed(item)
    item.close(ItemState.FINISHED)
    announcer.item_changed(item)
    announcer.item_changed(item)
    await hass.async_block_till_done()
    assert [event.data for event in events] == [
        {
            "type": "finished",
            "entity_id": HALL,
            "announcement_id": item.id,
            "text": "Hello",
        }
    ]
