"""Voices: the stream's default engine, its fallback and their circuit breakers.

The engines are real TTS entities of Home Assistant: one that speaks a tone as
MP3, one that raises, one that never answers. What is heard is checked at a
real RTSP receiver.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from homeassistant.components.tts import TextToSpeechEntity, TtsAudioType
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer import diagnostics
from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.exceptions import SpeechEngineError
from custom_components.rtsp_announcer.audio.speech import VoiceEngine
from custom_components.rtsp_announcer.const import EVENT_ANNOUNCEMENT
from custom_components.rtsp_announcer.voices import TtsEntityVoice

from .common import (
    add_voice,
    heard_after,
    make_tone,
    record_events,
    start_stream,
    unload,
)
from .common import announce as announce_all
from .helpers.analysis import tone_seconds
from .helpers.rtsp import ListenReceiver
from .voices import ToneVoice

ENTITY = "media_player.hall"
RATE = 24000
TONE = "tts.tone_voice"
FAILING = "tts.failing_voice"
HANGING = "tts.hanging_voice"


class HangingVoice(TextToSpeechEntity):
    """A voice that never answers until the test lets it go."""

    _attr_name = "Hanging voice"
    _attr_default_language = "en"

    def __init__(self) -> None:
        self._attr_supported_languages = ["en"]
        self.release = asyncio.Event()
        self.messages: list[str] = []

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> TtsAudioType:
        self.messages.append(message)
        await self.release.wait()
        msg = "too late"
        raise HomeAssistantError(msg)


@pytest.fixture
def other_tone(tmp_path: Path) -> bytes:
    return make_tone(tmp_path / "other.mp3", freq=700, seconds=0.6).read_bytes()


async def announce(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await announce_all(hass, **data))[ENTITY]
    return result


async def add_failing_voice(hass: HomeAssistant, audio: bytes) -> ToneVoice:
    """Set up a voice "Failing voice" whose service is down."""
    failing = ToneVoice("Failing voice", audio)
    failing.broken = True
    await add_voice(hass, failing)
    return failing


async def failing_with_fallback(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes, other_tone: bytes
) -> tuple[ToneVoice, ToneVoice, MockConfigEntry]:
    """A stream whose voice fails, with a tone voice as its fallback."""
    failing = ToneVoice("Failing voice", other_tone)
    failing.broken = True
    fallback = ToneVoice("Tone voice", tone)
    await add_voice(hass, failing, fallback)
    entry = await start_stream(
        hass,
        receiver,
        options={opt.VOICE_ENGINE.key: FAILING, opt.FALLBACK_ENGINE.key: TONE},
    )
    return failing, fallback, entry


async def test_a_failing_default_is_replaced_by_the_fallback(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes, other_tone: bytes
) -> None:
    failing, fallback, entry = await failing_with_fallback(
        hass, receiver, tone, other_tone
    )
    events = record_events(hass, EVENT_ANNOUNCEMENT)
    before = receiver.total_samples

    result = await announce(hass, message="Dinner is ready.")

    assert result["state"] == "finished"
    assert result["engine"] == TONE
    assert result["fallback"] is True
    assert failing.messages == ["Dinner is ready."]
    assert fallback.messages == ["Dinner is ready."]
    heard = await heard_after(receiver, before, 0.6)
    assert tone_seconds(heard, RATE, 500) == pytest.approx(0.6, abs=0.15)
    assert tone_seconds(heard, RATE, 700) == 0
    await hass.async_block_till_done()
    finished = [event.data for event in events if event.data["type"] == "finished"]
    assert finished[0]["engine"] == TONE
    assert finished[0]["fallback"] is True

    # A call that names its engine still gets it, the fallback behind it.
    result = await announce(hass, message="Hello.", tts_entity_id=TONE)
    assert result["engine"] == TONE
    assert result["fallback"] is False
    await unload(hass, entry)


async def test_the_breaker_opens_then_lets_the_default_back(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes, other_tone: bytes
) -> None:
    failing, fallback, entry = await failing_with_fallback(
        hass, receiver, tone, other_tone
    )
    for number in range(3):
        result = await announce(hass, message=f"Call {number}.")
        assert result["engine"] == TONE
    assert len(failing.messages) == 3
    found = await diagnostics.async_get_config_entry_diagnostics(hass, entry)
    breaker = found["voices"]["breakers"][FAILING]
    assert breaker["state"] == "open"
    assert breaker["failures"] == 3
    assert found["voices"]["breakers"][TONE]["state"] == "closed"

    # Open: straight to the fallback, the failing engine is not asked.
    before = receiver.total_samples
    result = await announce(hass, message="Call 3.")
    assert result["engine"] == TONE
    assert result["fallback"] is True
    assert len(failing.messages) == 3
    assert tone_seconds(await heard_after(receiver, before, 0.6), RATE, 500) > 0.4

    # After the cool-down one trial goes to the default; it speaks again.
    failing.broken = False
    voices = entry.runtime_data.announcer.voices
    voices.clock = lambda: time.monotonic() + 31
    before = receiver.total_samples
    result = await announce(hass, message="Call 4.")
    assert result["engine"] == FAILING
    assert result["fallback"] is False
    assert failing.messages[-1] == "Call 4."
    heard = await heard_after(receiver, before, 0.6)
    assert tone_seconds(heard, RATE, 700) == pytest.approx(0.6, abs=0.15)
    assert tone_seconds(heard, RATE, 500) == 0
    found = await diagnostics.async_get_config_entry_diagnostics(hass, entry)
    assert found["voices"]["breakers"][FAILING] == {
        "state": "closed",
        "failures": 0,
        "retry_in_s": None,
    }
    await unload(hass, entry)


async def test_a_default_that_gives_no_audio_in_time_is_replaced(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes
) -> None:
    hanging = HangingVoice()
    fallback = ToneVoice("Tone voice", tone)
    await add_voice(hass, hanging, fallback)
    entry = await start_stream(
        hass,
        receiver,
        options={
            opt.VOICE_ENGINE.key: HANGING,
            opt.FALLBACK_ENGINE.key: TONE,
            opt.FIRST_AUDIO_TIMEOUT.key: 0.5,
        },
    )
    before = receiver.total_samples
    result = await announce(hass, message="Dinner is ready.")
    assert result["engine"] == TONE
    assert result["fallback"] is True
    assert hanging.messages == ["Dinner is ready."]
    # No more delay than the limit (and the fallback's own start).
    assert 500 <= result["delay_ms"] < 1500
    assert tone_seconds(await heard_after(receiver, before, 0.6), RATE, 500) > 0.4
    hanging.release.set()
    await hass.async_block_till_done()
    await unload(hass, entry)


async def test_without_a_fallback_the_failure_is_the_calls(
    hass: HomeAssistant, receiver: ListenReceiver, other_tone: bytes
) -> None:
    await add_failing_voice(hass, other_tone)
    entry = await start_stream(hass, receiver, options={opt.VOICE_ENGINE.key: FAILING})
    with pytest.raises(HomeAssistantError) as err:
        await announce(hass, message="Dinner is ready.")
    assert err.value.translation_key == "announcement_failed"
    await unload(hass, entry)


async def test_the_local_voice_as_the_fallback(
    hass: HomeAssistant, receiver: ListenReceiver, other_tone: bytes
) -> None:
    await add_failing_voice(hass, other_tone)
    entry = await start_stream(
        hass,
        receiver,
        options={
            opt.VOICE_ENGINE.key: FAILING,
            opt.FALLBACK_ENGINE.key: "tts.hall_local_voice",
        },
    )
    before = receiver.total_samples
    result = await announce(hass, message="Turn on the kitchen lights.")
    assert result["engine"] == "tts.hall_local_voice"
    assert result["fallback"] is True
    assert result["duration"] > 0.8
    heard = await heard_after(receiver, before, 0.6)
    # espeak-ng's words, louder than the silence padding.
    assert int(np.abs(heard.astype(np.int32)).max()) > 3000
    await unload(hass, entry)


async def test_another_voices_leading_silence_is_trimmed(
    hass: HomeAssistant, receiver: ListenReceiver, tmp_path: Path
) -> None:
    """A service that starts with 0.4 s of silence is heard at once."""
    tone = make_tone(tmp_path / "late.wav", freq=500, seconds=0.6)
    late = tmp_path / "late.mp3"
    await _after_silence(tone, late)
    voice = ToneVoice("Tone voice", late.read_bytes())
    await add_voice(hass, voice)
    entry = await start_stream(hass, receiver, options={opt.VOICE_ENGINE.key: TONE})
    result = await announce(hass, message="Dinner is ready.")
    assert result["engine"] == TONE
    # Only the tone is played (and MP3's own few ms of padding).
    assert result["duration"] == pytest.approx(0.6, abs=0.08)
    await unload(hass, entry)


async def _after_silence(tone: Path, out: Path) -> None:
    """Write 0.4 s of silence followed by the tone, as MP3."""
    process = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono:d=0.4", "-i", str(tone),
        "-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1", "-ac", "1", str(out),
    )  # fmt: skip
    assert await process.wait() == 0


async def test_a_missing_default_leaves_the_words_to_the_fallback(
    hass: HomeAssistant, receiver: ListenReceiver, tone: bytes
) -> None:
    await add_voice(hass, ToneVoice("Tone voice", tone))
    entry = await start_stream(
        hass,
        receiver,
        options={
            opt.VOICE_ENGINE.key: "tts.removed_voice",
            opt.FALLBACK_ENGINE.key: TONE,
        },
    )
    result = await announce(hass, message="Dinner is ready.")
    assert result["engine"] == TONE
    assert result["fallback"] is True
    await unload(hass, entry)


async def test_a_silent_voice_without_a_fallback_fails_in_time(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    hanging = HangingVoice()
    await add_voice(hass, hanging)
    entry = await start_stream(
        hass,
        receiver,
        options={opt.VOICE_ENGINE.key: HANGING, opt.FIRST_AUDIO_TIMEOUT.key: 0.5},
    )
    started = time.monotonic()
    with pytest.raises(HomeAssistantError) as err:
        await announce(hass, message="Dinner is ready.")
    assert time.monotonic() - started < 2.0
    assert err.value.translation_key == "announcement_failed"
    assert err.value.translation_placeholders == {"error": "no audio within 0.5 s"}
    hanging.release.set()
    await hass.async_block_till_done()
    await unload(hass, entry)


async def test_another_tts_entity_is_a_voice_engine(
    hass: HomeAssistant, tone: bytes
) -> None:
    """Text in, PCM at the asked rate out, through the same protocol as espeak-ng."""
    voice = ToneVoice("Tone voice", tone)
    await add_voice(hass, voice)
    engine: VoiceEngine = TtsEntityVoice(hass, TONE, binary="ffmpeg")
    assert engine.name == TONE
    pcm = b"".join([chunk async for chunk in engine.stream("Hi", sample_rate=16000)])
    assert len(pcm) / 2 / 16000 == pytest.approx(0.6, abs=0.08)
    assert voice.messages == ["Hi"]

    voice.broken = True
    with pytest.raises(SpeechEngineError, match="the voice service is down"):
        async for _ in engine.stream("Hi again", sample_rate=16000):
            pass
    missing: VoiceEngine = TtsEntityVoice(hass, "tts.removed_voice", binary="ffmpeg")
    with pytest.raises(SpeechEngineError, match=r"tts\.removed_voice"):
        async for _ in missing.stream("Hi", sample_rate=16000):
            pass
