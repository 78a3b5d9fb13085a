"""The announce action: whom it targets, what it returns and how it fails.

It is an entity service of the stream media players: Home Assistant resolves
the targets and calls every available stream at once. The streams here publish
to real RTSP servers (an unavailable stream is not called at all).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.tts import TextToSpeechEntity
from homeassistant.components.tts.entity import TTSAudioRequest, TTSAudioResponse
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import floor_registry as fr
from homeassistant.helpers import label_registry as lr
from homeassistant.setup import async_setup_component
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
from custom_components.rtsp_announcer.services import PLATFORM_ENTITY_SERVICES

from .common import (
    DEAD_URL,
    add_entry,
    add_voice,
    ffmpeg_children,
    make_tone,
    record_events,
    wait_available,
)
from .helpers.rtsp import ListenReceiver
from .helpers.waiting import until

HALL = "media_player.hall"
PORCH = "media_player.porch"
RATE = 24000


async def set_up_live(
    hass: HomeAssistant, receiver: ListenReceiver, name: str
) -> MockConfigEntry:
    """A stream that publishes to `receiver`, once it is available."""
    entry = add_entry(hass, receiver.url, name=name)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, f"media_player.{name.lower()}")
    return entry


async def tear_down(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def hall(
    hass: HomeAssistant, receiver: ListenReceiver
) -> AsyncGenerator[MockConfigEntry]:
    entry = await set_up_live(hass, receiver, "Hall")
    yield entry
    await tear_down(hass, entry)
    assert ffmpeg_children() == []


@pytest.fixture
async def porch(
    hass: HomeAssistant, hall: MockConfigEntry
) -> AsyncGenerator[MockConfigEntry]:
    async with ListenReceiver(rate=RATE) as receiver:
        entry = await set_up_live(hass, receiver, "Porch")
        yield entry
        await tear_down(hass, entry)


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


def device_of(hass: HomeAssistant, entry: MockConfigEntry) -> dr.DeviceEntry:
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return device


# ------------------------------------------------------------------------ targets


async def test_a_device_target_announces_on_its_stream(
    hass: HomeAssistant, hall: MockConfigEntry, porch: MockConfigEntry
) -> None:
    # The device also has the voice and notify entities: they are not streams,
    # and Home Assistant does not call them.
    response = await announce_to(
        hass, {"device_id": device_of(hass, hall).id}, message="Hello", wait=False
    )
    assert list(response) == [HALL]
    assert response[HALL]["state"] == "queued"
    assert [item.id for item in items_of(hall)] == [response[HALL]["announcement_id"]]
    assert items_of(porch) == []


async def test_an_area_target_skips_what_is_not_a_stream(
    hass: HomeAssistant,
    hall: MockConfigEntry,
    porch: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
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
    # Named explicitly, the foreign speaker is passed over too; Home Assistant
    # says so in its log.
    caplog.clear()
    response = await announce_to(
        hass, {"entity_id": [HALL, speaker.entity_id]}, message="Hi", wait=False
    )
    assert list(response) == [HALL]
    assert speaker.entity_id in caplog.text
    assert len(items_of(hall)) == 2


async def test_floor_and_label_targets(
    hass: HomeAssistant, hall: MockConfigEntry, porch: MockConfigEntry
) -> None:
    ground = fr.async_get(hass).async_create("Ground floor")
    areas = ar.async_get(hass)
    garden = areas.async_create("Garden")
    areas.async_update(garden.id, floor_id=ground.floor_id)
    dr.async_get(hass).async_update_device(device_of(hass, porch).id, area_id=garden.id)
    response = await announce_to(
        hass, {"floor_id": ground.floor_id}, message="Hello", wait=False
    )
    assert list(response) == [PORCH]
    loud = lr.async_get(hass).async_create("Loud")
    er.async_get(hass).async_update_entity(HALL, labels={loud.label_id})
    response = await announce_to(
        hass, {"label_id": loud.label_id}, message="Hello", wait=False
    )
    assert list(response) == [HALL]
    response = await announce_to(
        hass,
        {"label_id": loud.label_id, "floor_id": ground.floor_id},
        message="Hello",
        wait=False,
    )
    assert sorted(response) == [HALL, PORCH]
    assert len(items_of(hall)) == 2
    assert len(items_of(porch)) == 2


async def test_a_stream_that_is_not_loaded_or_not_publishing_is_passed_over(
    hass: HomeAssistant, hall: MockConfigEntry, porch: MockConfigEntry
) -> None:
    assert await hass.config_entries.async_unload(hall.entry_id)
    response = await announce_to(hass, {"entity_id": [HALL, PORCH]}, message="Hi")
    assert list(response) == [PORCH]
    assert response[PORCH]["state"] == "finished"
    # A stream that is down (nothing listens on its port) is not called either.
    down = add_entry(hass, DEAD_URL, name="Down")
    assert await hass.config_entries.async_setup(down.entry_id)
    await hass.async_block_till_done()
    response = await announce_to(
        hass, {"entity_id": ["media_player.down", PORCH]}, message="Hi", wait=False
    )
    assert list(response) == [PORCH]
    assert items_of(down) == []
    # With nothing left to call, a caller that wants a response is told.
    with pytest.raises(HomeAssistantError) as err:
        await announce_to(hass, {"entity_id": "media_player.down"}, message="Hi")
    assert not isinstance(err.value, ServiceValidationError)
    assert await hass.config_entries.async_unload(down.entry_id)


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


async def test_the_action_is_registered_once_with_an_optional_response(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    # Where Home Assistant offers it, the action exists before any stream.
    assert hass.services.has_service(DOMAIN, "announce") is PLATFORM_ENTITY_SERVICES
    first = await set_up_live(hass, receiver, "Hall")
    async with ListenReceiver(rate=RATE) as other:
        second = await set_up_live(hass, other, "Porch")
        assert hass.services.has_service(DOMAIN, "announce")
        assert (
            hass.services.supports_response(DOMAIN, "announce")
            is SupportsResponse.OPTIONAL
        )
        response = await announce_to(
            hass, {"entity_id": [HALL, PORCH]}, message="Hi", wait=False
        )
        assert sorted(response) == [HALL, PORCH]
        await tear_down(hass, second)
    await tear_down(hass, first)


# ----------------------------------------------------------- several streams at once


async def test_waiting_streams_start_together(
    hass: HomeAssistant, hall: MockConfigEntry, porch: MockConfigEntry
) -> None:
    response = await announce_to(
        hass, {"entity_id": [HALL, PORCH]}, message="Two at once.", volume=0.5
    )
    assert response[HALL]["state"] == response[PORCH]["state"] == "finished"
    assert response[HALL]["announcement_id"] != response[PORCH]["announcement_id"]
    # Both measured from the same call, and neither waited for the other.
    gap = abs(response[HALL]["delay_ms"] - response[PORCH]["delay_ms"])
    assert gap < 100, response
    assert response[HALL]["duration"] == pytest.approx(
        response[PORCH]["duration"], abs=0.05
    )


@pytest.mark.parametrize("fails_after", [0.0, 0.2])
async def test_a_call_that_fails_on_one_stream_plays_on_none(
    hass: HomeAssistant,
    hall: MockConfigEntry,
    porch: MockConfigEntry,
    fails_after: float,
) -> None:
    events = record_events(hass, EVENT_ANNOUNCEMENT)

    async def broken_plan(request: AnnounceRequest) -> Plan:
        await asyncio.sleep(fails_after)
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="decode_failed",
            translation_placeholders={"media_id": "x", "error": "broken"},
        )

    # The hall fails before or after the porch has planned its announcement.
    with (
        patch.object(hall.runtime_data.announcer, "async_plan", broken_plan),
        pytest.raises(ServiceValidationError) as err,
    ):
        await announce_to(hass, {"entity_id": [HALL, PORCH]}, message="Hi")
    assert err.value.translation_key == "decode_failed"
    assert items_of(hall) == []
    assert items_of(porch) == []
    await hass.async_block_till_done()
    assert events == []
    # The next call is a call of its own.
    response = await announce_to(hass, {"entity_id": [HALL, PORCH]}, message="Hi")
    assert response[HALL]["state"] == response[PORCH]["state"] == "finished"


async def test_a_queue_filled_meanwhile_fails_the_whole_call(
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
    # The streams are queued together once all have planned: the hall got
    # nothing, so the call that failed plays nowhere.
    assert items_of(hall) == []
    await hass.async_block_till_done()
    assert all(event.data["entity_id"] != HALL for event in events)
    assert all(item.title == "someone else's" for item in items_of(porch))
    stream.stop_playback()


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
    hass: HomeAssistant, hall: MockConfigEntry, tmp_path: Path
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
    await until(lambda: bool(events), 5.0)
    assert events[0].data["type"] == "failed"
    assert events[0].data["error"] == error
    assert items_of(hall) == []
    assert hall.runtime_data.stream.available


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
    hass: HomeAssistant, hall: MockConfigEntry, tmp_path: Path
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
    await until(lambda: not items_of(hall), 5.0)
    assert hall.runtime_data.stream.available


async def test_the_local_voice_failing_midway_fails_the_call(
    hass: HomeAssistant, hall: MockConfigEntry
) -> None:
    engine = hall.runtime_data.speech.engine
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
