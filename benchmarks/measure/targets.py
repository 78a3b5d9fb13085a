"""A stream under test: it takes announcements and says when each one starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.cache import PcmCache
from custom_components.rtsp_announcer.audio.exceptions import AnnouncerError
from custom_components.rtsp_announcer.audio.models import (
    BYTES_PER_SAMPLE,
    StreamSettings,
)
from custom_components.rtsp_announcer.audio.speech import (
    SpeechEngine,
    SpeechOptions,
    VoiceInfo,
)
from custom_components.rtsp_announcer.audio.stream import AudioStream
from custom_components.rtsp_announcer.audio.text import clean_text, normalize_text
from custom_components.rtsp_announcer.const import (
    CONF_NAME,
    CONF_URL,
    DOMAIN,
    SERVICE_ANNOUNCE,
)

from . import LANGUAGE
from .onset import heard_at, settle

if TYPE_CHECKING:
    import numpy as np
    from homeassistant.core import HomeAssistant

    from custom_components.rtsp_announcer.audio.playback import PlaybackItem
    from custom_components.rtsp_announcer.data import RtspAnnouncerData
    from tests.helpers.rtsp import ListenReceiver

STARTED_TIMEOUT = 10.0
HEARD_TIMEOUT = 10.0
# What one cached slice of announce.py holds; the core path copies it.
FEED_SECONDS = 0.5


class Target(Protocol):
    """One stream that takes announcements, and the engine and cache behind it."""

    stream: AudioStream
    engine: SpeechEngine
    cache: PcmCache

    async def announce(self, text: str) -> str:
        """Make the call; return the announcement's id once it is queued."""
        ...


class StartWatch:
    """Catches items as they start playing, also before anyone asks for them."""

    def __init__(self, stream: AudioStream) -> None:
        self._started: dict[str, PlaybackItem] = {}
        self._changed = asyncio.Event()
        self._remove = stream.add_item_listener(self._on_item)

    def _on_item(self, item: PlaybackItem) -> None:
        if item.started_at is not None and item.id not in self._started:
            self._started[item.id] = item
            self._changed.set()

    async def started(self, item_id: str) -> PlaybackItem:
        async with asyncio.timeout(STARTED_TIMEOUT):
            while (item := self._started.pop(item_id, None)) is None:
                self._changed.clear()
                await self._changed.wait()
        return item

    def close(self) -> None:
        self._remove()


class HaTarget:
    """The stream of one config entry, driven through the announce action.

    With `voice` (a TTS entity id) it speaks with that entity, and numbers each
    message so that Home Assistant's TTS cache never answers.
    """

    def __init__(
        self, hass: HomeAssistant, data: RtspAnnouncerData, voice: str | None = None
    ) -> None:
        self._hass = hass
        self._data = data
        self.stream = data.stream
        self.engine = data.speech.engine
        self.cache = data.speech.cache
        entity_id = data.announcer.entity_id
        assert entity_id is not None
        self.entity_id = entity_id
        self._voice = voice
        self.calls = 0

    def speaking_with(self, voice: str) -> HaTarget:
        """The same stream, speaking with another TTS entity."""
        return HaTarget(self._hass, self._data, voice)

    async def announce(self, text: str) -> str:
        self.calls += 1
        call: dict[str, Any] = {
            "entity_id": self.entity_id,
            "message": text if self._voice is None else f"{text} {self.calls}",
            "language": LANGUAGE,
            "preannounce": False,
            # The long text plays for 1.5 minutes: return once it is queued.
            "wait": False,
        }
        if self._voice is not None:
            call["tts_entity_id"] = self._voice
        response = await self._hass.services.async_call(
            DOMAIN, SERVICE_ANNOUNCE, call, blocking=True, return_response=True
        )
        assert response is not None
        result = response[self.entity_id]
        assert isinstance(result, dict)
        return str(result["announcement_id"])


class CoreTarget:
    """The audio core wired the way announce.py wires it, without Home Assistant."""

    def __init__(
        self, stream: AudioStream, engine: SpeechEngine, cache: PcmCache
    ) -> None:
        self.stream = stream
        self.engine = engine
        self.cache = cache

    async def announce(self, text: str) -> str:
        voice, spoken, key = await speech_key(
            self.engine, text, self.stream.settings.sample_rate
        )
        item = self.stream.new_item(title=spoken)
        self.stream.queue.add(item)
        self.stream.run_producer(self._produce(item, spoken, voice, key), item)
        return item.id

    async def _produce(
        self, item: PlaybackItem, text: str, voice: VoiceInfo, key: tuple[object, ...]
    ) -> None:
        try:
            if await self._speak(item, text, voice, key):
                item.end()
        except AnnouncerError as err:
            item.fail(err)

    async def _speak(
        self, item: PlaybackItem, text: str, voice: VoiceInfo, key: tuple[object, ...]
    ) -> bool:
        rate = self.stream.settings.sample_rate
        cached = self.cache.get(key)
        if cached is not None:
            step = int(rate * FEED_SECONDS) * BYTES_PER_SAMPLE
            for start in range(0, len(cached), step):
                if not await item.feed(cached[start : start + step]):
                    return False
            return True
        rendered = bytearray()
        audio = self.engine.stream(text, sample_rate=rate, voice=voice.identifier)
        async with aclosing(audio) as chunks:
            async for pcm in chunks:
                rendered += pcm
                if not await item.feed(pcm):
                    return False
        self.cache.put(key, bytes(rendered))
        return True


async def speech_key(
    engine: SpeechEngine, text: str, rate: int
) -> tuple[VoiceInfo, str, tuple[object, ...]]:
    """The voice, spoken text and cache key announce.py uses for `text`."""
    voice = await engine.resolve_voice(LANGUAGE)
    spoken = normalize_text(clean_text(text), voice.language)
    return (
        voice,
        spoken,
        ("speech", spoken, voice.identifier, SpeechOptions.create(), rate),
    )


@contextlib.asynccontextmanager
async def ha_target(hass: HomeAssistant, url: str, rate: int) -> AsyncIterator[Target]:
    name = f"Bench {rate}"
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=name,
        data={CONF_NAME: name, CONF_URL: url},
        options={opt.SAMPLE_RATE.key: rate},
        unique_id=f"benchmark-{rate}",
    )
    entry.add_to_hass(hass)
    if not await hass.config_entries.async_setup(entry.entry_id):
        msg = f"the config entry did not load: {entry.state}"
        raise RuntimeError(msg)
    try:
        data: RtspAnnouncerData = entry.runtime_data
        yield HaTarget(hass, data)
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.config_entries.async_remove(entry.entry_id)


@contextlib.asynccontextmanager
async def core_target(url: str, rate: int) -> AsyncIterator[Target]:
    engine = SpeechEngine()
    stream = AudioStream(StreamSettings(url=url, sample_rate=rate))
    try:
        await engine.async_start()
        await stream.start()
        yield CoreTarget(stream, engine, PcmCache())
    finally:
        await stream.stop()
        await engine.async_stop()


async def first_sample_ms(
    target: Target, watch: StartWatch, text: str, rng: np.random.Generator
) -> float:
    # A random pause keeps the calls from locking onto the 20 ms clock phase.
    await asyncio.sleep(float(rng.uniform(0.03, 0.07)))
    loop = asyncio.get_running_loop()
    called = loop.time()
    item = await watch.started(await target.announce(text))
    target.stream.stop_playback()
    assert item.started_at is not None
    return (item.started_at - called) * 1000


async def heard_ms(
    target: Target,
    watch: StartWatch,
    receiver: ListenReceiver,
    text: str,
    rng: np.random.Generator,
) -> tuple[float, float | None]:
    await asyncio.sleep(float(rng.uniform(0.0, 0.02)))
    loop = asyncio.get_running_loop()
    base = receiver.total_samples
    called = loop.time()
    item = await watch.started(await target.announce(text))
    try:
        arrived = await heard_at(receiver, base, HEARD_TIMEOUT)
    finally:
        target.stream.stop_playback()
    await settle(receiver)
    assert item.started_at is not None
    first = (item.started_at - called) * 1000
    return first, None if arrived is None else (arrived - called) * 1000
