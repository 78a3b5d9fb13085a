"""The local espeak-ng voice as a Home Assistant text-to-speech entity."""

from __future__ import annotations

import asyncio
import io
import struct
import wave
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, Final

import numpy as np
from homeassistant.components.tts import (
    TextToSpeechEntity,
    TtsAudioType,
    Voice,
)

# Both classes live here on every supported release; 2025.4 does not export
# TTSAudioResponse from the package itself.
from homeassistant.components.tts.entity import TTSAudioRequest, TTSAudioResponse
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .audio import (
    BYTES_PER_SAMPLE,
    DEFAULT_LANGUAGE,
    AnnouncerError,
    SpeechEngineError,
    SpeechOptions,
    UnknownLanguageError,
    VoiceInfo,
    clean_text,
    normalize_text,
    split_sentences,
)
from .const import MAX_MESSAGE_LENGTH
from .data import RtspAnnouncerConfigEntry
from .entity import RtspAnnouncerEntity
from .errors import message_too_long, speech_error
from .speech import SPEECH_OPTIONS, async_resolve_speech

# Synthesis runs on the shared engine's own thread, one request at a time.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtspAnnouncerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the local voice of the stream's device."""
    async_add_entities([LocalVoiceEntity(entry)])


def to_wav(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap s16le mono PCM in a WAV container."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(BYTES_PER_SAMPLE)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


# The RIFF and data sizes of a WAV whose length is not known when its header is
# sent: what ffmpeg writes to a pipe; ffmpeg reads such a file to its end.
_UNKNOWN_SIZE: Final = 0xFFFFFFFF
# Streamed audio is 32-bit float. ffmpeg's WAV reader looks far ahead into
# 16-bit PCM before it returns anything (it checks for S/PDIF data inside):
# ~1.5 s of speech at 22050 Hz, or the end of the stream. Float WAV is decoded
# as it arrives by ffmpeg started with `-probesize 32`, as Home Assistant's
# own conversion of streamed TTS audio is.
_WAVE_FORMAT_IEEE_FLOAT: Final = 3
_FLOAT_BYTES: Final = 4
# Appended to the buffered text to ask whether its last sentence is complete:
# a boundary before the probe splits it off; text still running joins it.
_PROBE: Final = "x"


def wav_stream_header(sample_rate: int) -> bytes:
    """The header of a mono 32-bit float WAV stream of unknown length."""
    fmt = struct.pack(
        "<HHIIHHH",
        _WAVE_FORMAT_IEEE_FLOAT,
        1,
        sample_rate,
        sample_rate * _FLOAT_BYTES,
        _FLOAT_BYTES,
        8 * _FLOAT_BYTES,
        0,  # no extra format bytes
    )
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", _UNKNOWN_SIZE),
            b"WAVEfmt ",
            struct.pack("<I", len(fmt)),
            fmt,
            b"data",
            struct.pack("<I", _UNKNOWN_SIZE),
        )
    )


def to_float(pcm: bytes) -> bytes:
    """s16le samples as little-endian 32-bit floats in [-1, 1)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype("<f4")
    samples /= 32768
    return samples.tobytes()


class SentenceBuffer:
    """Text arriving in pieces, handed out one complete sentence at a time.

    A sentence is complete once the text after it shows its end: `.`, `!`,
    `?` or `…` followed by a space, a line break, or a CJK end mark (the
    ideographic full stop, full-width `!`, `?` and `;`), which needs nothing
    after it. Sentence ends follow `split_sentences`, so
    streamed and whole text are cut alike (`Dr. ` and `3.5` do not end one). A
    sentence longer than the splitter's limit is handed out in pieces, which
    bounds what waits here.
    """

    def __init__(self) -> None:
        """Start with nothing buffered."""
        self._text = ""

    def feed(self, text: str) -> list[str]:
        """Add `text`; return the sentences it completes, in order."""
        self._text += text
        *complete, last = split_sentences(self._text + _PROBE)
        self._text = last.removesuffix(_PROBE)
        return complete

    def flush(self) -> list[str]:
        """The end of the text: return what is left, as sentences."""
        text, self._text = self._text, ""
        return split_sentences(text)


class LocalVoiceEntity(RtspAnnouncerEntity, TextToSpeechEntity):
    """espeak-ng speaking locally: for any speaker, the TTS cache and Assist."""

    _attr_translation_key = "voice"
    _attr_supported_options: list[str] | None = list(SPEECH_OPTIONS)  # noqa: RUF012

    def __init__(self, entry: RtspAnnouncerConfigEntry) -> None:
        """Create the voice entity on the stream's device."""
        super().__init__(entry, "tts")
        self._speech = entry.runtime_data.speech
        # Set on removal: a stream of text still arriving then speaks no more,
        # so that no sentence starts the stopped engine again.
        self._removed = False

    async def async_will_remove_from_hass(self) -> None:
        """End the speech of streams still running: their entry unloads."""
        self._removed = True
        await super().async_will_remove_from_hass()

    @property
    def available(self) -> bool:
        """Available while libespeak-ng is loaded, whatever the stream does.

        The voice renders audio for any TTS consumer (other speakers, Assist)
        and needs neither ffmpeg nor the RTSP server: an outage of the stream
        does not make it unavailable.
        """
        return self._speech.engine.catalog is not None

    @property
    def supported_languages(self) -> list[str]:
        """Every language espeak-ng has a voice for, in Home Assistant's codes."""
        catalog = self._speech.engine.catalog
        return [] if catalog is None else catalog.supported_languages()

    @property
    def default_language(self) -> str:
        """Home Assistant's language if espeak-ng speaks it, else English."""
        catalog = self._speech.engine.catalog
        language = self.hass.config.language
        if catalog is not None:
            try:
                catalog.resolve(language)
            except UnknownLanguageError:
                return DEFAULT_LANGUAGE
        return language

    @callback
    def async_get_supported_voices(self, language: str) -> list[Voice] | None:
        """The espeak-ng voices that speak `language`, best first."""
        catalog = self._speech.engine.catalog
        if catalog is None:
            return None
        try:
            voices = catalog.candidates(language)
        except UnknownLanguageError:
            return None
        return [Voice(voice.identifier, voice.name) for voice in voices]

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> TtsAudioType:
        """Render `message` as WAV on the engine's thread (never the executor)."""
        if len(message) > MAX_MESSAGE_LENGTH:
            raise message_too_long()
        voice, speech = await async_resolve_speech(
            self._speech.engine, language, options
        )
        engine = self._speech.engine
        try:
            pcm = await engine.synthesize(
                normalize_text(clean_text(message), voice.language),
                voice=voice.identifier,
                rate=speech.rate,
                pitch=speech.pitch,
                volume=speech.volume,
                gap=speech.gap,
            )
        except AnnouncerError as err:
            raise speech_error(err) from err
        return "wav", to_wav(pcm, engine.native_rate)

    async def async_stream_tts_audio(
        self, request: TTSAudioRequest
    ) -> TTSAudioResponse:
        """Speak text that arrives in pieces, sentence by sentence.

        Each sentence is synthesised as soon as its end has arrived, and its
        audio goes out while the rest of the text is still coming (an LLM's
        reply is spoken from its first sentence). The result is a WAV stream:
        a header of unknown length, then 32-bit float samples at espeak's
        native rate.
        Options and the voice are checked at once; too much text, or a
        failing synthesis, ends the audio with the translated error.
        """
        voice, speech = await async_resolve_speech(
            self._speech.engine, request.language, request.options
        )
        return TTSAudioResponse(
            "wav", self._stream_wav(request.message_gen, voice, speech)
        )

    async def _stream_wav(
        self,
        message_gen: AsyncGenerator[str],
        voice: VoiceInfo,
        speech: SpeechOptions,
    ) -> AsyncGenerator[bytes]:
        engine = self._speech.engine
        sample_rate = engine.native_rate
        # Sent with the first audio, so that the first bytes out are speech.
        header = wav_stream_header(sample_rate)
        async with aclosing(self._sentences(message_gen)) as sentences:
            async for sentence in sentences:
                if self._removed:
                    stopped = SpeechEngineError("the local voice was unloaded")
                    raise speech_error(stopped)
                text = normalize_text(clean_text(sentence), voice.language)
                audio = engine.stream_with(
                    text, speech, sample_rate=sample_rate, voice=voice.identifier
                )
                try:
                    async with aclosing(audio) as chunks:
                        async for pcm in chunks:
                            yield header + to_float(pcm)
                            header = b""
                            # Chunks queued by a fast synthesis would otherwise
                            # be taken in one go: minutes of audio in one step
                            # of the consumer's task, with the loop held.
                            await asyncio.sleep(0)
                except AnnouncerError as err:
                    raise speech_error(err) from err
        if header:
            yield header

    @staticmethod
    async def _sentences(message_gen: AsyncGenerator[str]) -> AsyncGenerator[str]:
        """The complete sentences of the incoming text, as soon as each ends."""
        buffer = SentenceBuffer()
        received = 0
        # Nothing else reads the text once the audio ends, however it ends.
        async with aclosing(message_gen) as pieces:
            async for text in pieces:
                received += len(text)
                if received > MAX_MESSAGE_LENGTH:
                    raise message_too_long()
                for sentence in buffer.feed(text):
                    yield sentence
        for sentence in buffer.flush():
            yield sentence
