"""The voices of a stream: its default TTS entity, a fallback, their breakers.

Any TTS entity of this Home Assistant can be a stream's voice. `TtsEntityVoice`
adapts one to the audio core's `VoiceEngine` protocol, as the local espeak-ng
engine is: text in, PCM at the stream's rate out, decoded while it arrives,
its leading silence trimmed so that every voice starts at once.

`StreamVoices` knows which engine a stream speaks with when a call names none
(the configured one; else the stream's local voice; else, on an install
without espeak-ng, the first other TTS entity), which one stands in when it
fails, and keeps one circuit breaker per engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Mapping
from typing import Any, Final

from homeassistant.components import tts
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er

from .audio import (
    AnnouncerError,
    CircuitBreaker,
    DecodeError,
    DecodeLimits,
    LeadingSilenceTrimmer,
    PlaybackItem,
    SpeechEngineError,
    cancel_and_wait,
    decode_to,
)
from .audio import options as opt
from .const import BREAKER_COOL_DOWN, BREAKER_FAILURES, DOMAIN
from .speech import SharedSpeech

# Decoded chunks waiting for the announcer: a little look-ahead, bounded.
_QUEUED_CHUNKS: Final = 8
_END: Final = b""


class TtsEntityVoice:
    """Another Home Assistant TTS entity as a `VoiceEngine`."""

    def __init__(
        self,
        hass: HomeAssistant,
        entity_id: str,
        *,
        binary: str,
        options: Mapping[str, Any] | None = None,
        limits: DecodeLimits | None = None,
    ) -> None:
        """Speak with `entity_id`, decoding with the ffmpeg `binary`."""
        self._hass = hass
        self._entity_id = entity_id
        self._binary = binary
        self._options = dict(options or {})
        self._limits = limits or DecodeLimits()
        self._prepared: tts.ResultStream | None = None

    @property
    def name(self) -> str:
        """The entity id."""
        return self._entity_id

    def prepare(self, language: str | None) -> None:
        """Open the entity's result stream now: its language and options are checked.

        Raises:
            HomeAssistantError: the entity does not exist or refuses them.
        """
        self._prepared = self._create(language, None)

    def _create(self, language: str | None, voice: str | None) -> tts.ResultStream:
        options = dict(self._options)
        if voice is not None:
            options["voice"] = voice
        return tts.async_create_stream(
            self._hass, self._entity_id, language=language, options=options or None
        )

    async def stream(
        self,
        text: str,
        *,
        sample_rate: int,
        language: str | None = None,
        voice: str | None = None,
    ) -> AsyncGenerator[bytes]:
        """Speak `text` with the entity; PCM comes while its audio arrives.

        Raises:
            SpeechEngineError: the entity failed or its audio cannot be decoded.
        """
        result, self._prepared = self._prepared, None
        if result is None:
            try:
                result = self._create(language, voice)
            except HomeAssistantError as err:
                raise SpeechEngineError(f"{self._entity_id}: {err}") from err
        result.async_set_message(text)
        chunks: asyncio.Queue[bytes] = asyncio.Queue(_QUEUED_CHUNKS)
        # Collects the decoder's failure; the announcement itself is not failed.
        scratch = PlaybackItem(sample_rate=sample_rate)

        async def put(pcm: bytes) -> bool:
            await chunks.put(pcm)
            return True

        async def decode() -> None:
            try:
                await decode_to(
                    put,
                    engine_audio(result.async_stream_result()),
                    binary=self._binary,
                    sample_rate=sample_rate,
                    item=scratch,
                    limits=self._limits,
                )
            finally:
                await chunks.put(_END)

        task = asyncio.get_running_loop().create_task(
            decode(), name=f"{DOMAIN} voice {self._entity_id}"
        )
        trimmer = LeadingSilenceTrimmer(sample_rate)
        try:
            while pcm := await chunks.get():
                if trimmed := trimmer.process(pcm):
                    yield trimmed
            if scratch.error is not None:
                raise SpeechEngineError(str(scratch.error)) from scratch.error
            if rest := trimmer.flush():
                yield rest
        finally:
            await cancel_and_wait(task)


async def engine_audio(chunks: AsyncIterable[bytes]) -> AsyncGenerator[bytes]:
    """Pass a TTS entity's audio through, turning its failures into ours."""
    try:
        async for chunk in chunks:
            yield chunk
    except HomeAssistantError as err:
        msg = f"the TTS entity failed: {err}"
        raise DecodeError(msg) from err


class StreamVoices:
    """Which engines speak on one stream, and how each has been doing."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        speech: SharedSpeech,
        options: Mapping[str, Any],
    ) -> None:
        """Voices of the entry `entry_id`, configured by its options."""
        self._hass = hass
        self._entry_id = entry_id
        self._speech = speech
        self._options = options
        self._breakers: dict[str, CircuitBreaker] = {}
        # The breakers' clock; tests move it.
        self.clock: Callable[[], float] = time.monotonic

    @property
    def local_entity_id(self) -> str | None:
        """The stream's own espeak-ng TTS entity."""
        return er.async_get(self._hass).async_get_entity_id(
            "tts", DOMAIN, f"{self._entry_id}_tts"
        )

    @property
    def local_available(self) -> bool:
        """Whether espeak-ng was loaded."""
        return self._speech.engine.catalog is not None

    @property
    def configured_engine(self) -> str | None:
        """The engine chosen in the options, if any."""
        return self._options.get(opt.VOICE_ENGINE.key) or None

    @property
    def language(self) -> str | None:
        """The language chosen for the default engine, if any."""
        return self._options.get(opt.VOICE_LANGUAGE.key) or None

    @property
    def voice(self) -> str | None:
        """The voice chosen for the default engine, if any."""
        return self._options.get(opt.VOICE.key) or None

    @property
    def first_audio_timeout(self) -> float:
        """Seconds an engine may take to its first audio before the fallback."""
        return float(opt.FIRST_AUDIO_TIMEOUT.read(self._options))

    def default_engine(self) -> str | None:
        """The engine of a call that names none."""
        if (configured := self.configured_engine) is not None:
            return configured
        if self.local_available:
            return self.local_entity_id
        return first_other_engine(self._hass)

    def fallback_engine(self, primary: str | None) -> str | None:
        """The engine that stands in for `primary`, if another one is set."""
        fallback: str | None = self._options.get(opt.FALLBACK_ENGINE.key) or None
        return None if fallback == primary else fallback

    def breaker(self, engine: str) -> CircuitBreaker:
        """The breaker of one engine on this stream."""
        breaker = self._breakers.get(engine)
        if breaker is None:
            breaker = self._breakers[engine] = CircuitBreaker(
                failure_threshold=BREAKER_FAILURES,
                cool_down=BREAKER_COOL_DOWN,
                clock=lambda: self.clock(),
            )
        return breaker

    def breakers(self) -> dict[str, CircuitBreaker]:
        """Every engine that has spoken or failed on this stream, by entity id."""
        return dict(self._breakers)


def first_other_engine(hass: HomeAssistant) -> str | None:
    """The first available TTS entity that is not an espeak-ng voice of ours."""
    registry = er.async_get(hass)
    for entity_id in sorted(hass.states.async_entity_ids("tts")):
        entry = registry.async_get(entity_id)
        if entry is not None and entry.platform == DOMAIN:
            continue
        state = hass.states.get(entity_id)
        if state is not None and state.state != "unavailable":
            return entity_id
    return None


def engine_failure(err: BaseException) -> str:
    """How an engine's failure reads in logs and errors."""
    if isinstance(err, TimeoutError):
        return "no audio in time"
    if isinstance(err, AnnouncerError | HomeAssistantError):
        return str(err) or type(err).__name__
    return type(err).__name__
