"""Streaming speech: text that arrives in pieces is spoken from its first sentence.

On Home Assistant releases with message streams (`ResultStream.
async_set_message_stream`, 2025.5 on) the text goes through Home Assistant's own
TTS machinery. 2025.4 has the entity method but feeds it whole messages only;
there the tests call the entity's streaming method as Home Assistant does,
with the text in pieces.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import numpy as np
import pytest
from homeassistant.components import tts
from homeassistant.components.tts import TextToSpeechEntity
from homeassistant.components.tts.const import DATA_COMPONENT
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.audio.speech import THREAD_NAME
from custom_components.rtsp_announcer.const import MAX_MESSAGE_LENGTH
from custom_components.rtsp_announcer.tts import (
    SentenceBuffer,
    to_float,
    wav_stream_header,
)

from .common import DEAD_URL, add_entry
from .helpers.analysis import rms_dbfs

TTS_ENTITY = "tts.hall_local_voice"
RATE = 22050
HEADER_BYTES = len(wav_stream_header(RATE))
# Generous: only a broken implementation waits this long.
WAIT = 30
HAS_MESSAGE_STREAMS = hasattr(tts.ResultStream, "async_set_message_stream")

ENGLISH = [
    "Good morning. ",
    "The kitchen lights are on",
    ", and the coffee is ready. ",
    "It is sunny outside.",
]
CHINESE = ["今天天气很好。", "我们去公园吧！", "你要一起来吗？"]


def voice_entity(hass: HomeAssistant) -> TextToSpeechEntity:
    entity = hass.data[DATA_COMPONENT].get_entity(TTS_ENTITY)
    assert entity is not None
    return entity


async def listening(
    hass: HomeAssistant, text: AsyncGenerator[str], *, stop_reading: bool = False
) -> tuple[asyncio.Task[None], asyncio.Event]:
    """A reader of the voice's audio of `text`, and an Event its first audio sets.

    With `stop_reading`, the reader stops reading after that first chunk.
    """
    response = await voice_entity(hass).internal_async_stream_tts_audio(
        TTSAudioRequest("en", {}, text)
    )
    heard = asyncio.Event()

    async def read() -> None:
        async with aclosing(response.data_gen) as audio:
            async for _chunk in audio:
                heard.set()
                if stop_reading:
                    await asyncio.Event().wait()  # a reader that stops reading

    return asyncio.create_task(read()), heard


async def stream_audio(
    hass: HomeAssistant,
    text: AsyncGenerator[str],
    language: str = "en",
    options: dict[str, Any] | None = None,
) -> AsyncIterator[bytes]:
    """The WAV audio of `text`, through Home Assistant's TTS where it can."""
    if HAS_MESSAGE_STREAMS:
        result = tts.async_create_stream(
            hass,
            TTS_ENTITY,
            language=language,
            options={"preferred_format": "wav", **(options or {})},
        )
        result.async_set_message_stream(text)
        return result.async_stream_result()
    response = await voice_entity(hass).internal_async_stream_tts_audio(
        TTSAudioRequest(language, options or {}, text)
    )
    assert response.extension == "wav"
    return response.data_gen


async def decode(data: bytes, input_format: str = "wav") -> np.ndarray[Any, Any]:
    """Decode with ffmpeg to s16le mono at `RATE`."""
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        input_format,
        "-i",
        "pipe:0",
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        str(RATE),
        "pipe:1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(data)
    assert process.returncode == 0, err.decode()
    return np.frombuffer(out, dtype=np.int16)


async def whole_text_seconds(hass: HomeAssistant, text: str, language: str) -> float:
    """How long the same text lasts rendered in one piece."""
    extension, data = await voice_entity(hass).async_get_tts_audio(text, language, {})
    assert extension == "wav"
    assert data is not None
    return len(await decode(data)) / RATE


def assert_same_speech(streamed: float, whole: float, sentences: int) -> None:
    # Each streamed sentence starts at its first sound (espeak's 12-50 ms of
    # leading silence trimmed), and espeak varies by a few percent per call.
    assert streamed == pytest.approx(whole, abs=0.06 * sentences + 0.05 * whole)


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["Hello", " there.", " How are", " you?"], [[], [], ["Hello there."], []]),
        (
            ["Dr.", " Who is", " here? 3.", "5 km. "],
            [[], [], ["Dr. Who is here?"], ["3.5 km."]],
        ),
        (
            ["今天天气很好。", "去公园吧！你", "来吗？"],
            [["今天天气很好。"], ["去公园吧！"], ["你来吗？"]],
        ),
        (["One\n", "Two"], [["One"], []]),
    ],
)
def test_a_sentence_is_handed_out_once_its_end_has_arrived(
    pieces: list[str], expected: list[list[str]]
) -> None:
    buffer = SentenceBuffer()
    assert [buffer.feed(piece) for piece in pieces] == expected


def test_what_is_left_at_the_end_is_spoken_too() -> None:
    buffer = SentenceBuffer()
    assert buffer.feed("It is 3.") == []
    assert buffer.feed("5 degrees") == []
    assert buffer.flush() == ["It is 3.5 degrees"]
    assert buffer.flush() == []


def test_a_long_sentence_does_not_wait_for_its_end() -> None:
    buffer = SentenceBuffer()
    handed = buffer.feed("word " * 200)
    assert handed
    assert all(len(sentence) <= 400 for sentence in handed)


async def test_the_stream_is_float_wav_of_unknown_length() -> None:
    header = wav_stream_header(RATE)
    assert header[:4] == b"RIFF"
    assert header[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<I", header, 4) == (0xFFFFFFFF,)
    # IEEE float, mono, 32 bits.
    assert struct.unpack_from("<HHIIHH", header, 20) == (
        3,
        1,
        RATE,
        RATE * 4,
        4,
        32,
    )
    assert header[-8:-4] == b"data"
    assert struct.unpack_from("<I", header, HEADER_BYTES - 4) == (0xFFFFFFFF,)
    pcm = (np.sin(np.arange(RATE) / 10) * 16000).astype("<i2")
    samples = await decode(header + to_float(pcm.tobytes()))
    assert np.abs(samples.astype(int) - pcm).max() <= 1


@pytest.mark.usefixtures("entry")
@pytest.mark.parametrize(
    ("pieces", "language"), [(ENGLISH, "en"), (CHINESE, "zh-CN")], ids=["en", "zh"]
)
async def test_the_first_sentence_is_heard_before_the_text_has_all_arrived(
    hass: HomeAssistant, pieces: list[str], language: str
) -> None:
    order: list[str] = []
    first_audio = asyncio.Event()

    async def text() -> AsyncGenerator[str]:
        order.append("first sentence given")
        yield pieces[0]
        # Like an LLM still thinking: the rest comes only once speech has begun.
        await asyncio.wait_for(first_audio.wait(), WAIT)
        for piece in pieces[1:]:
            order.append("more text given")
            yield piece
        order.append("text ended")

    audio = bytearray()
    async for chunk in await stream_audio(hass, text(), language):
        audio += chunk
        if len(audio) > HEADER_BYTES and not first_audio.is_set():
            order.append("first audio")
            first_audio.set()
    assert order[:3] == ["first sentence given", "first audio", "more text given"]
    assert order[-1] == "text ended"

    assert audio.startswith(b"RIFF")
    samples = await decode(bytes(audio))
    assert rms_dbfs(samples) > -40
    whole = await whole_text_seconds(hass, "".join(pieces), language)
    assert whole > 1.5
    sentences = 3
    assert_same_speech(len(samples) / RATE, whole, sentences)


@pytest.mark.usefixtures("entry")
async def test_each_chinese_sentence_is_spoken_as_its_end_mark_arrives(
    hass: HomeAssistant,
) -> None:
    # No space is needed after 。！？: each piece completes a sentence at once.
    heard = asyncio.Event()
    spoken_before: list[int] = []
    audio = bytearray()

    async def text() -> AsyncGenerator[str]:
        for piece in CHINESE:
            heard.clear()
            yield piece
            await asyncio.wait_for(heard.wait(), WAIT)
            spoken_before.append(len(audio))

    async for chunk in await stream_audio(hass, text(), "zh-CN"):
        audio += chunk
        heard.set()
    assert len(spoken_before) == len(CHINESE)
    assert spoken_before[0] > HEADER_BYTES
    assert spoken_before == sorted(spoken_before)
    samples = await decode(bytes(audio))
    whole = await whole_text_seconds(hass, "".join(CHINESE), "zh-CN")
    assert_same_speech(len(samples) / RATE, whole, len(CHINESE))


@pytest.mark.usefixtures("entry")
@pytest.mark.skipif(not HAS_MESSAGE_STREAMS, reason="no message streams in 2025.4")
async def test_a_message_stream_converted_to_mp3_is_speech(hass: HomeAssistant) -> None:
    # The default format: Home Assistant converts the WAV stream as it comes,
    # the first sentence before the rest of the text has arrived.
    first_audio = asyncio.Event()
    order: list[str] = []

    async def text() -> AsyncGenerator[str]:
        yield ENGLISH[0]
        await asyncio.wait_for(first_audio.wait(), WAIT)
        order.append("more text given")
        for piece in ENGLISH[1:]:
            yield piece

    result = tts.async_create_stream(hass, TTS_ENTITY, language="en")
    assert result.extension == "mp3"
    result.async_set_message_stream(text())
    data = b""
    async for chunk in result.async_stream_result():
        data += chunk
        if not first_audio.is_set():
            order.append("first audio")
            first_audio.set()
    assert order == ["first audio", "more text given"]
    samples = await decode(data, "mp3")
    whole = await whole_text_seconds(hass, "".join(ENGLISH), "en")
    # MP3 adds an encoder delay and pads its last frame.
    assert_same_speech(len(samples) / RATE, whole + 0.05, 3)


@pytest.mark.usefixtures("entry")
@pytest.mark.parametrize("extension", ["mp3", "wav"])
async def test_whole_text_through_home_assistant_on_every_release(
    hass: HomeAssistant, extension: str
) -> None:
    media_id = tts.generate_media_source_id(
        hass,
        "Dinner is ready. Please come to the table.",
        engine=TTS_ENTITY,
        language="en",
        options={"preferred_format": extension},
        cache=False,
    )
    got, data = await tts.async_get_media_source_audio(hass, media_id)
    assert got == extension
    samples = await decode(data, extension)
    assert 1.5 < len(samples) / RATE < 6
    assert rms_dbfs(samples) > -40


@pytest.mark.parametrize("where", ["while speaking", "while waiting for text"])
async def test_cancelling_stops_the_synthesis(
    hass: HomeAssistant, entry: MockConfigEntry, where: str
) -> None:
    engine = entry.runtime_data.speech.engine
    entity = voice_entity(hass)
    text_closed = asyncio.Event()
    stalled = asyncio.Event()

    async def text() -> AsyncGenerator[str]:
        try:
            # Long sentences: many chunks queued beyond the first.
            yield "This sentence goes on " + "and on " * 50 + "until it ends. "
            yield "And so does this one " + "and on " * 50 + "until it ends. "
            stalled.set()
            await asyncio.Event().wait()  # an LLM that never finishes
        finally:
            text_closed.set()

    listener, first_audio = await listening(
        hass, text(), stop_reading=where == "while speaking"
    )
    cancelled_before = engine.stats.cancelled
    await asyncio.wait_for(first_audio.wait(), WAIT)
    if where == "while waiting for text":
        await asyncio.wait_for(stalled.wait(), WAIT)
    listener.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listener
    await asyncio.wait_for(text_closed.wait(), WAIT)
    if where == "while speaking":
        assert engine.stats.cancelled == cancelled_before + 1
    # The voice is free at once for the next request.
    extension, data = await asyncio.wait_for(
        entity.async_get_tts_audio("Still here.", "en", {}), WAIT
    )
    assert extension == "wav"
    assert data is not None
    assert len(data) > 10_000


async def test_unloading_ends_a_stream_still_speaking(hass: HomeAssistant) -> None:
    entry = add_entry(hass, DEAD_URL)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    more = asyncio.Event()

    async def text() -> AsyncGenerator[str]:
        yield "The first sentence. "
        await more.wait()
        yield "The second sentence, after the voice has gone."

    listener, speaking = await listening(hass, text())
    await asyncio.wait_for(speaking.wait(), WAIT)
    assert await hass.config_entries.async_unload(entry.entry_id)
    more.set()
    with pytest.raises(HomeAssistantError) as err:
        await asyncio.wait_for(listener, WAIT)
    assert err.value.translation_key == "speech_failed"
    # The stopped engine was not started again for the second sentence.
    assert THREAD_NAME not in {thread.name for thread in threading.enumerate()}


@pytest.mark.usefixtures("entry")
async def test_too_much_text_ends_the_audio_with_the_translated_error(
    hass: HomeAssistant,
) -> None:
    async def text() -> AsyncGenerator[str]:
        yield "Hello there. "
        while True:
            yield "word " * 100

    with pytest.raises(ServiceValidationError) as err:
        async for _chunk in await stream_audio(hass, text()):
            pass
    assert err.value.translation_key == "message_too_long"
    assert err.value.translation_placeholders == {"limit": str(MAX_MESSAGE_LENGTH)}

    with pytest.raises(ServiceValidationError) as err:
        await voice_entity(hass).async_get_tts_audio(
            "a" * (MAX_MESSAGE_LENGTH + 1), "en", {}
        )
    assert err.value.translation_key == "message_too_long"


@pytest.mark.usefixtures("entry")
async def test_bad_options_are_refused_before_any_text_is_read(
    hass: HomeAssistant,
) -> None:
    read = False

    async def text() -> AsyncGenerator[str]:
        nonlocal read
        read = True
        yield "Hello."

    with pytest.raises(ServiceValidationError) as err:
        await voice_entity(hass).internal_async_stream_tts_audio(
            TTSAudioRequest("en", {"rate": 9999}, text())
        )
    assert err.value.translation_key == "invalid_option"
    assert not read


@pytest.mark.usefixtures("entry")
async def test_empty_text_is_an_empty_wav(hass: HomeAssistant) -> None:
    async def text() -> AsyncGenerator[str]:
        yield " "
        yield "..."

    audio = b"".join([chunk async for chunk in await stream_audio(hass, text())])
    assert audio == wav_stream_header(RATE)
