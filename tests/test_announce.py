"""The announce action's validation and the local voice entity.

The action runs on streams that publish (Home Assistant calls no unavailable
entity); the voice entity needs no server, so its stream may be down.
"""

from __future__ import annotations

import io
import wave
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.components import tts
from homeassistant.components.tts import TextToSpeechEntity
from homeassistant.components.tts.const import DATA_COMPONENT
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.announce import (
    AnnounceRequest,
    TtsMessage,
    TtsStream,
    parse_tts_media_id,
)
from custom_components.rtsp_announcer.const import DOMAIN

ENTITY = "media_player.hall"
TTS_ENTITY = "tts.hall_local_voice"


async def call(hass: HomeAssistant, **data: Any) -> Any:
    data.setdefault("entity_id", ENTITY)
    return await hass.services.async_call(
        DOMAIN, "announce", data, blocking=True, return_response=True
    )


def voice_entity_of(hass: HomeAssistant) -> TextToSpeechEntity:
    entity = hass.data[DATA_COMPONENT].get_entity(TTS_ENTITY)
    assert entity is not None
    return entity


def queue_length(entry: MockConfigEntry) -> int:
    return len(entry.runtime_data.stream.queue)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "nothing_to_announce"),
        ({"message": "   "}, "nothing_to_announce"),
        ({"message": "x" * 5001}, "message_too_long"),
        ({"message": "hi", "language": "xx-YY"}, "unknown_language"),
        ({"message": "hi", "options": {"voice": "no/such-voice"}}, "unknown_voice"),
        ({"message": "hi", "options": {"rate": 5}}, "invalid_option"),
        ({"message": "hi", "options": {"pitch": 500}}, "invalid_option"),
        ({"message": "hi", "options": {"shout": True}}, "invalid_option"),
        ({"media_id": "/etc/shadow"}, "media_not_allowed"),
        ({"media_id": "media-source://tts/"}, "decode_failed"),
        ({"media_id": "media-source://tts/-stream-/"}, "decode_failed"),
        ({"media_id": "media-source://tts/-stream-/gone.mp3"}, "decode_failed"),
        (
            {"media_id": "media-source://tts/tts.x?message=hi&tts_options=%7Bno"},
            "decode_failed",
        ),
        (
            {"media_id": "media-source://tts/tts.x?message=hi&tts_options=%5B1%5D"},
            "decode_failed",
        ),
        ({"media_id": "media-source://tts/a/b?message=hi"}, "decode_failed"),
    ],
)
async def test_bad_calls_are_refused_and_queue_nothing(
    hass: HomeAssistant, live: MockConfigEntry, data: dict[str, Any], key: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, wait=False, **data)
    assert err.value.translation_key == key
    assert queue_length(live) == 0


@pytest.mark.parametrize(
    "data",
    [
        {"message": "hi", "volume": 1.5},
        {"message": "hi", "volume": "loud"},
        {"message": "hi", "priority": "urgent"},
        {"message": "hi", "tts_entity_id": "light.kitchen"},
        {"message": ["not", "a", "string"]},
        {"message": "hi", "options": "fast"},
        # Home Assistant wants a target.
        {"entity_id": None, "message": "hi"},
    ],
)
async def test_schema_refuses_wrong_types(
    hass: HomeAssistant, live: MockConfigEntry, data: dict[str, Any]
) -> None:
    if data.get("entity_id", ENTITY) is None:
        del data["entity_id"]
        with pytest.raises(vol.Invalid):
            await hass.services.async_call(DOMAIN, "announce", data, blocking=True)
    else:
        with pytest.raises(vol.Invalid):
            await call(hass, **data)
    assert queue_length(live) == 0


async def test_an_unavailable_stream_is_not_called(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    # Home Assistant calls no unavailable entity: nothing is queued for later.
    assert (
        await hass.services.async_call(
            DOMAIN,
            "announce",
            {"entity_id": ENTITY, "message": "Hello", "wait": False},
            blocking=True,
        )
        is None
    )
    assert queue_length(entry) == 0
    # A caller that wants a response hears that no stream was called.
    with pytest.raises(HomeAssistantError):
        await call(hass, message="Hello")
    # A stream that goes down while a call is planned refuses a waiting caller
    # (one that does not wait gets queued for when the stream returns).
    announcer = entry.runtime_data.announcer
    with pytest.raises(HomeAssistantError) as err:
        announcer.check_room(AnnounceRequest(message="Hello"))
    assert err.value.translation_key == "stream_unavailable"
    assert err.value.translation_placeholders == {"entity_id": ENTITY}
    announcer.check_room(AnnounceRequest(message="Hello", wait=False))


async def test_queue_limit(hass: HomeAssistant, live: MockConfigEntry) -> None:
    stream = live.runtime_data.stream
    limit = stream.queue.max_items
    while len(stream.queue) < limit - 1:
        stream.queue.add(stream.new_item(title="someone else's"))
    await call(hass, message="Hello", wait=False)
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, message="Hello", wait=False)
    assert err.value.translation_key == "queue_full"
    assert err.value.translation_placeholders == {
        "entity_id": ENTITY,
        "limit": str(limit),
    }
    assert queue_length(live) == limit
    stream.stop_playback()


async def test_targets_that_are_not_streams_are_not_called(
    hass: HomeAssistant, live: MockConfigEntry
) -> None:
    hass.states.async_set("media_player.other", "idle")
    response = await call(hass, entity_id=[ENTITY, "media_player.other"], message="hi")
    assert list(response) == [ENTITY]
    targets: list[str | list[str]] = ["media_player.other", []]
    for target in targets:
        with pytest.raises(HomeAssistantError):
            await call(hass, entity_id=target, message="hi")


async def test_control_characters_are_cleaned(
    hass: HomeAssistant, live: MockConfigEntry
) -> None:
    response = await call(hass, message="Door\x00 open\x07\ud800", wait=False)
    item = live.runtime_data.stream.queue.current or next(
        iter(live.runtime_data.stream.queue._items)
    )
    assert item.id == response[ENTITY]["announcement_id"]
    assert item.title == "Door  open"


async def test_local_voice_entity(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    state = hass.states.get(TTS_ENTITY)
    assert state is not None
    assert state.state != "unavailable"
    voice_entity = voice_entity_of(hass)
    languages = voice_entity.supported_languages
    for code in ("en", "en-US", "de-DE", "zh", "zh-CN", "cmn"):
        assert code in languages
    assert voice_entity.default_language == "en"
    voices = voice_entity.async_get_supported_voices("zh")
    assert voices is not None
    assert "sit/cmn" in [voice.voice_id for voice in voices]
    assert voice_entity.async_get_supported_voices("xx") is None
    assert set(voice_entity.supported_options or []) == {
        "voice",
        "rate",
        "pitch",
        "volume",
        "gap",
    }


async def test_local_voice_renders_wav_for_any_consumer(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    voice_entity = voice_entity_of(hass)
    extension, data = await voice_entity.async_get_tts_audio(
        "Hello there.", "en-US", {}
    )
    assert extension == "wav"
    assert data is not None
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == 22050
        assert 0.5 < wav.getnframes() / 22050 < 2.0
    # Through Home Assistant's TTS manager (cache, media source, Assist), which
    # converts to its own default format.
    media_id = tts.generate_media_source_id(
        hass, "Hello there.", engine=TTS_ENTITY, language="en-US", cache=False
    )
    extension, data = await tts.async_get_media_source_audio(hass, media_id)
    assert extension == "mp3"
    assert len(data) > 1000


@pytest.mark.parametrize(
    ("language", "options"),
    [("xx", {}), ("en", {"rate": 1}), ("en", {"voice": "nope"}), ("en", {"x": 1})],
)
async def test_local_voice_bad_requests(
    hass: HomeAssistant, entry: MockConfigEntry, language: str, options: dict[str, Any]
) -> None:
    voice_entity = voice_entity_of(hass)
    with pytest.raises(HomeAssistantError):
        await voice_entity.async_get_tts_audio("Hello", language, options)


async def test_media_selector_values_and_empty_chime(
    hass: HomeAssistant, live: MockConfigEntry
) -> None:
    # The UI's media selector sends a dict; an emptied chime field means the default.
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            media_id={"media_content_id": "/etc/shadow", "media_content_type": "music"},
            wait=False,
        )
    assert err.value.translation_key == "media_not_allowed"
    response = await call(hass, message="Hello", preannounce_media_id="", wait=False)
    assert response[ENTITY]["state"] == "queued"


@pytest.mark.usefixtures("entry")
@pytest.mark.parametrize(
    ("message", "language", "options"),
    [
        ("Hello there.", None, None),
        ("Tea & cake? 100% = yes/no #1", "en-GB", {"voice": "gmw/en-gb-x-rp"}),
        ("前台请注意。", "zh", {"rate": 150, "pitch": 40}),
    ],
)
async def test_tts_media_ids_that_home_assistant_generates_are_read(
    hass: HomeAssistant,
    message: str,
    language: str | None,
    options: dict[str, Any] | None,
) -> None:
    media_id = tts.generate_media_source_id(
        hass, message, engine=TTS_ENTITY, language=language, options=options
    )
    assert parse_tts_media_id(media_id) == TtsMessage(
        engine=TTS_ENTITY, message=message, language=language, options=options or {}
    )


@pytest.mark.parametrize(
    ("media_id", "parsed"),
    [
        # Options as query parameters, as older ids had them.
        (
            "media-source://tts/tts.piper?message=Hi%20there&language=en&cache=false"
            "&voice=alan&speed=2",
            TtsMessage("tts.piper", "Hi there", "en", {"voice": "alan", "speed": "2"}),
        ),
        (
            "media-source://tts/google_translate?message=Hi&tts_options=null",
            TtsMessage("google_translate", "Hi", None, {}),
        ),
        # No engine: the stream's own voice.
        ("media-source://tts/?message=Hi", TtsMessage("", "Hi", None, {})),
        (
            "media-source://tts/-stream-/Ab3_x-Y.mp3",
            TtsStream("Ab3_x-Y.mp3"),
        ),
    ],
)
def test_tts_media_ids_are_read(media_id: str, parsed: TtsMessage | TtsStream) -> None:
    assert parse_tts_media_id(media_id) == parsed


@pytest.mark.parametrize(
    ("media_id", "error"),
    [
        ("media-source://tts/tts.piper", "No message specified."),
        ("media-source://tts/tts.piper?message=a&tts_options=%7B", "Invalid TTS"),
        ("media-source://tts/tts.piper?message=a&tts_options=1", "not an object"),
        ("media-source://tts/-stream-", "no result stream"),
        ("media-source://tts/-stream-/a/b", "no result stream"),
        ("media-source://tts/a/b?message=a", "not a TTS engine"),
        ("media-source://media_source/local/a.mp3", "not a TTS media-source id"),
    ],
)
def test_malformed_tts_media_ids(media_id: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_tts_media_id(media_id)
