"""Without espeak-ng (Home Assistant OS, the container image): other TTS entities.

The stream's default voice is then the first other TTS entity, or the one
chosen in its options; with none at all a repair issue explains it and its fix
flow sets one. Every way in speaks with it, heard at a real RTSP reader.
"""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.components.tts import Voice
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import TextSelector
from homeassistant.setup import async_setup_component

from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.const import DOMAIN, EVENT_ANNOUNCEMENT

from .common import (
    add_voice,
    announce,
    ffmpeg_children,
    heard_after,
    notify,
    record_events,
    speak,
    start_stream,
    state_of,
    unload,
    wait_available,
    wait_for_state,
)
from .helpers.analysis import tone_seconds
from .helpers.rtsp import ListenReceiver
from .voices import ToneVoice

ENTITY = "media_player.hall"
RATE = 24000
TONE = "tts.tone_voice"

# The options' first step as the user leaves it, before the voice is picked.
STREAM_STEP: dict[str, object] = {
    "codec": "aac",
    "pcm_transport": "socket",
    "sample_rate": "24000",
    "rtsp_transport": "tcp",
    "frame_ms": 20,
    "lead_ms": 60,
}

pytestmark = pytest.mark.usefixtures("no_espeak")


class VoicedTone(ToneVoice):
    """A tone voice that has voices and takes the `voice` option."""

    # Like every TTS entity of an integration: registered, so its platform is found.
    _attr_unique_id = "voiced_tone"
    _attr_supported_options = ["voice"]  # noqa: RUF012

    def __init__(self, audio: bytes) -> None:
        super().__init__("Tone voice", audio)
        self._attr_supported_languages = ["en", "de"]
        self.options: list[dict[str, Any]] = []

    def async_get_supported_voices(self, language: str) -> list[Voice] | None:
        return [Voice(f"{language}-low", "Low"), Voice(f"{language}-high", "High")]

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> Any:
        self.options.append({"language": language, **options})
        return await super().async_get_tts_audio(message, language, options)


async def test_every_way_in_speaks_with_another_tts_entity(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes
) -> None:
    voice = ToneVoice("Tone voice", tone)
    await add_voice(hass, voice)
    entry = await start_stream(hass, receiver)
    assert state_of(hass, "tts.hall_local_voice").state == "unavailable"
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, f"{entry.entry_id}_no_voice") is None

    # The action, with the chime before the words.
    before = receiver.total_samples
    response = await hass.services.async_call(
        DOMAIN,
        "announce",
        {"entity_id": ENTITY, "message": "Dinner is ready."},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    result: Any = response[ENTITY]
    assert result["state"] == "finished"
    assert result["engine"] == TONE
    assert result["fallback"] is False
    assert tone_seconds(await heard_after(receiver, before, 0.6), RATE, 500) > 0.4

    # A notification.
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    before = receiver.total_samples
    await notify(hass, "The washing is done.")
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "idle", 10)
    assert tone_seconds(await heard_after(receiver, before, 0.6), RATE, 500) > 0.4
    await hass.async_block_till_done()
    finished = [event.data for event in events if event.data["type"] == "finished"]
    assert finished[0]["engine"] == TONE

    # tts.speak names its own engine.
    before = receiver.total_samples
    await speak(hass, TONE, "Good night.")
    await wait_for_state(hass, ENTITY, lambda s: s.state == "playing", 5)
    await wait_for_state(hass, ENTITY, lambda s: s.state == "idle", 10)
    assert tone_seconds(await heard_after(receiver, before, 0.6), RATE, 500) > 0.4
    assert voice.messages == ["Dinner is ready.", "The washing is done.", "Good night."]
    await unload(hass, entry)


async def test_with_no_voice_at_all_a_repair_sets_one(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    entry = await start_stream(hass, receiver)
    issue_id = f"{entry.entry_id}_no_voice"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "no_voice"
    with pytest.raises(HomeAssistantError) as err:
        await announce(hass, message="Hello")
    assert err.value.translation_key == "no_voice"

    # The user sets a voice up, then picks it in the fix flow.
    voice = ToneVoice("Tone voice", tone)
    await add_voice(hass, voice)
    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    assert flow["type"] is FlowResultType.FORM
    assert flow["step_id"] == "engine"
    done = await manager.async_configure(flow["flow_id"], {opt.VOICE_ENGINE.key: TONE})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[opt.VOICE_ENGINE.key] == TONE
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await wait_available(hass, ENTITY)

    before = receiver.total_samples
    result = (await announce(hass, message="Hello"))[ENTITY]
    assert result["engine"] == TONE
    assert tone_seconds(await heard_after(receiver, before, 0.6), RATE, 500) > 0.4
    await unload(hass, entry)


async def test_the_options_offer_the_engines_languages_and_voices(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes
) -> None:
    voice = VoicedTone(tone)
    await add_voice(hass, voice)
    entry = await start_stream(hass, receiver)
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    step = await hass.config_entries.options.async_configure(
        flow["flow_id"],
        STREAM_STEP | {opt.VOICE_ENGINE.key: TONE},
    )
    assert step["type"] is FlowResultType.FORM
    assert step["step_id"] == "voice"
    schema = step["data_schema"]
    assert schema is not None
    fields = {str(key): value for key, value in schema.schema.items()}
    assert fields[opt.VOICE_LANGUAGE.key].config["options"] == ["de", "en"]
    assert fields[opt.VOICE_LANGUAGE.key].config["custom_value"] is True
    assert fields[opt.VOICE.key].config["options"] == ["en-low", "en-high"]
    done = await hass.config_entries.options.async_configure(
        step["flow_id"], {opt.VOICE_LANGUAGE.key: "de", opt.VOICE.key: "de-high"}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[opt.VOICE_ENGINE.key] == TONE
    assert entry.options[opt.VOICE_LANGUAGE.key] == "de"
    assert entry.options[opt.VOICE.key] == "de-high"
    await wait_available(hass, ENTITY)

    await announce(hass, message="Hallo")
    # A call still overrides the stream's language and voice.
    await announce(hass, message="Hello", language="en", options={"voice": "en-low"})
    assert voice.options == [
        {"language": "de", "voice": "de-high"},
        {"language": "en", "voice": "en-low"},
    ]
    await unload(hass, entry)


async def test_the_no_voice_issue_goes_with_the_stream(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    entry = await start_stream(hass, receiver)
    issue_id = f"{entry.entry_id}_no_voice"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert ffmpeg_children() == []


async def test_free_text_when_the_engine_reports_nothing(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes
) -> None:
    await add_voice(hass, ToneVoice("Tone voice", tone))
    entry = await start_stream(hass, receiver)
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    step = await hass.config_entries.options.async_configure(
        flow["flow_id"],
        STREAM_STEP
        | {
            opt.VOICE_ENGINE.key: "tts.not_loaded_yet",
            "fallback_engine": TONE,
            "first_audio_timeout": 2.5,
        },
    )
    assert step["step_id"] == "voice"
    schema = step["data_schema"]
    assert schema is not None
    fields = {str(key): value for key, value in schema.schema.items()}
    assert isinstance(fields[opt.VOICE_LANGUAGE.key], TextSelector)
    assert isinstance(fields[opt.VOICE.key], TextSelector)
    done = await hass.config_entries.options.async_configure(
        step["flow_id"], {opt.VOICE_LANGUAGE.key: " en-GB ", opt.VOICE.key: ""}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[opt.VOICE_ENGINE.key] == "tts.not_loaded_yet"
    assert entry.options[opt.VOICE_LANGUAGE.key] == "en-GB"
    assert opt.VOICE.key not in entry.options
    assert entry.options["fallback_engine"] == TONE
    assert entry.options["first_audio_timeout"] == 2.5
    await wait_available(hass, ENTITY)
    # The chosen engine is missing: the fallback speaks.
    result = (await announce(hass, message="Hello"))[ENTITY]
    assert result["engine"] == TONE
    assert result["fallback"] is True
    await unload(hass, entry)
