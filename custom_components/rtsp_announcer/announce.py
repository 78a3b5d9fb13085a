"""Announcements: what one `announce` call plays on one stream.

An announcement is validated and resolved completely (voice, language,
options, media) before anything is queued, so a bad call plays nothing. It
then becomes one playback item whose producer feeds, in order, the chime,
then the words (the local voice, another TTS entity or a media item).

Home Assistant calls the action once per targeted stream, all at once; the
streams of one call are gathered (`CallGroup`) so that they are queued in one
step once every one of them has planned its announcement, or not at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from homeassistant.components import tts
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.util.hass_dict import HassKey
from yarl import URL

from .audio import (
    BYTES_PER_SAMPLE,
    DEFAULT_LIMITS,
    PRIORITY_CRITICAL,
    PRIORITY_HIGH,
    PRIORITY_NORMAL,
    AnnouncerError,
    AudioStream,
    DecodeError,
    DecodeLimits,
    ItemState,
    PlaybackItem,
    QueueFullError,
    SpeechEngineError,
    SpeechOptions,
    VoiceEngine,
    VoiceInfo,
    clean_text,
    db_to_gain,
    decode_to,
    normalize_text,
    redact_text,
    redact_url,
    volume_to_gain,
)
from .audio import options as opt
from .const import (
    DOMAIN,
    EVENT_ANNOUNCEMENT,
    LOGGER,
    MAX_DISPLAY_LENGTH,
    MAX_MESSAGE_LENGTH,
    SOUNDS,
)
from .errors import (
    decode_failed,
    failure,
    message_too_long,
    speech_error,
    validation_error,
)
from .media import async_resolve_media_source
from .speech import SharedSpeech, async_resolve_speech
from .voices import StreamVoices, TtsEntityVoice, engine_audio, engine_failure

_TTS_MEDIA_SOURCE = "media-source://tts/"
# The path of a TTS media-source id that names a result stream created before
# (assist pipelines, assist_satellite announcements), not a message.
_TTS_STREAM_PATH = "-stream-"
_SOUNDS_DIR = Path(__file__).parent / "sounds"
DEFAULT_CHIME = str(_SOUNDS_DIR / f"{opt.PREANNOUNCE_SOUND.default}.flac")
# Cached PCM is fed in slices so the item's bounded buffer applies to it too.
_FEED_SECONDS = 0.5
_EVENT_TYPES = {
    ItemState.PLAYING: "started",
    ItemState.FINISHED: "finished",
    ItemState.FAILED: "failed",
    ItemState.INTERRUPTED: "interrupted",
    ItemState.CANCELLED: "cancelled",
    ItemState.EXPIRED: "expired",
    ItemState.SUSPENDED: "suspended",
}


class Priority(StrEnum):
    """How an announcement meets what is already playing."""

    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """The queue's rank: a higher one cuts off what plays."""
        return _RANKS[self]


_RANKS = {
    Priority.NORMAL: PRIORITY_NORMAL,
    Priority.HIGH: PRIORITY_HIGH,
    Priority.CRITICAL: PRIORITY_CRITICAL,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnounceRequest:
    """The fields of the `announce` action, validated by its schema."""

    message: str | None = None
    media_id: str | None = None
    tts_entity_id: str | None = None
    language: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    # None: the stream's default (its options) for this and the fields below.
    preannounce: bool | None = None
    preannounce_media_id: str | None = None
    volume: float = 1.0
    priority: Priority = Priority.NORMAL
    wait: bool = True
    # Seconds: all the waiting for this announcement's audio source.
    timeout: float | None = None
    # Seconds of silence before the first sound.
    lead_in: float | None = None
    gain_db: float | None = None
    repeat: int | None = None
    # Seconds of silence between repetitions.
    repeat_gap: float = opt.REPEAT_GAP.default
    repeat_preannounce: bool = False
    # Cut off by a higher priority: dropped instead of played again.
    droppable: bool = False
    # What the stream's screen shows (None: the message) and for how long
    # (None: until the next text).
    display_text: str | None = None
    display_seconds: float | None = None


type Part = Callable[[PlaybackItem], Any]


@dataclass(slots=True, kw_only=True)
class Plan:
    """An announcement resolved for one stream: ready to queue."""

    title: str
    parts: list[Part]
    gain: float = 1.0
    priority: Priority = Priority.NORMAL
    resumable: bool = True
    # Seconds of audio the announcement may give before the rest is cut.
    max_seconds: float | None = None
    display_text: str | None = None
    display_seconds: float | None = None


def announcement_gain(volume: float, gain_db: float) -> float:
    """The linear gain of one announcement: its volume (squared) and its dB gain.

    The one place where the stream's default gain (or the call's `gain_db`)
    is applied.
    """
    return volume_to_gain(volume) * db_to_gain(gain_db)


@dataclass(slots=True, eq=False)
class _Member:
    """One stream of an action call."""

    announcer: Announcer
    request: AnnounceRequest
    plan: Plan | None = None
    item: PlaybackItem | None = None
    error: BaseException | None = None


_OPEN_CALLS: HassKey[dict[object, CallGroup]] = HassKey(f"{DOMAIN}_open_calls")


class CallGroup:
    """The streams that one action call reaches: planned apart, queued together.

    Home Assistant runs the call on every targeted stream at once. Each stream
    joins the group of its call, then plans its announcement; the last one to
    finish queues every stream's announcement in one step, or none if any
    stream failed. So the streams start together, and a call that fails on one
    stream plays on none.
    """

    def __init__(self, hass: HomeAssistant, key: object) -> None:
        """Open the group of the call `key`; streams join it until it queues."""
        self.called_at = hass.loop.time()
        self.queued = asyncio.Event()
        self._open = hass.data.setdefault(_OPEN_CALLS, {})
        self._key = key
        self._members: list[_Member] = []
        self._planning = 0

    @classmethod
    def join(
        cls,
        hass: HomeAssistant,
        key: object,
        announcer: Announcer,
        request: AnnounceRequest,
    ) -> tuple[CallGroup, _Member]:
        """Add a stream to its call's open group, opening one if needed."""
        group = hass.data.get(_OPEN_CALLS, {}).get(key)
        if group is None:
            group = cls(hass, key)
            group._open[key] = group
        member = _Member(announcer, request)
        group._members.append(member)
        group._planning += 1
        return group, member

    def planned(self) -> None:
        """A stream is done planning; the last one queues them all."""
        self._planning -= 1
        if self._planning:
            return
        # Streams of the same call that come later form a group of their own.
        del self._open[self._key]
        try:
            if not any(member.error is not None for member in self._members):
                self._queue_all()
        finally:
            self.queued.set()

    def _queue_all(self) -> None:
        # Checked and queued in one step: nothing else runs in between.
        for member in self._members:
            try:
                member.announcer.check_room(member.request)
            except HomeAssistantError as err:
                member.error = err
                return
        for member in self._members:
            assert member.plan is not None  # noqa: S101
            member.item = member.announcer.enqueue(member.plan)


def display_text(text: str | None, message: str) -> str | None:
    """The text a screen shows: the call's own, else its message; None: none.

    Raises:
        ServiceValidationError: the text is longer than a screen can show.
    """
    if text is None:
        text = message[:MAX_DISPLAY_LENGTH]
    elif len(text) > MAX_DISPLAY_LENGTH:
        raise validation_error("display_text_too_long", limit=str(MAX_DISPLAY_LENGTH))
    return clean_text(text) or None


class Announcer:
    """Plans, queues and reports announcements on one stream."""

    def __init__(
        self,
        hass: HomeAssistant,
        stream: AudioStream,
        speech: SharedSpeech,
        entry_id: str,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Serve `stream` with the instance's shared speech engine."""
        self._hass = hass
        self.stream = stream
        self._speech = speech
        self._entry_id = entry_id
        self._options = options or {}
        self.voices = StreamVoices(hass, entry_id, speech, options or {})
        stream.queue.max_age = float(opt.MAX_QUEUE_AGE.read(self._options))

    @property
    def entity_id(self) -> str | None:
        """The stream's media player entity."""
        return er.async_get(self._hass).async_get_entity_id(
            "media_player", DOMAIN, f"{self._entry_id}_stream"
        )

    async def async_plan(self, request: AnnounceRequest) -> Plan:
        """Resolve everything the announcement needs, or raise a clear error."""
        stream_part: Part | None = None
        media_id = request.media_id
        if media_id is not None and media_id.startswith(_TTS_MEDIA_SOURCE):
            spoken = _tts_media(media_id)
            if isinstance(spoken, TtsMessage):
                request = replace(
                    request,
                    message=spoken.message,
                    media_id=None,
                    tts_entity_id=spoken.engine,
                    language=spoken.language,
                    options=spoken.options,
                )
            else:
                stream_part = self._tts_stream_part(
                    media_id, spoken.token, self.limits(request)
                )
        # Every way in (the action, tts.speak and play_media, notify) comes
        # here: the limit is checked before any work on the text.
        if request.message is not None and len(request.message) > MAX_MESSAGE_LENGTH:
            raise message_too_long()
        message = clean_text(request.message or "")
        if not message and not request.media_id:
            raise validation_error("nothing_to_announce")
        display = display_text(request.display_text, message)
        chime = await self._chime_part(request)
        body: list[Part] = []
        if message:
            body.append(await self._message_part(message, request))
        if stream_part is not None:
            body.append(stream_part)
        elif request.media_id:
            body.append(
                await self._media_part(request.media_id, cache=False, request=request)
            )
        gain_db = request.gain_db
        if gain_db is None:
            gain_db = float(opt.GAIN_DB.read(self._options))
        return Plan(
            title=message or redact_url(request.media_id or ""),
            parts=self._sequence(request, chime, body),
            gain=announcement_gain(request.volume, gain_db),
            priority=request.priority,
            resumable=not request.droppable,
            max_seconds=self.limits(request).total,
            display_text=display,
            display_seconds=request.display_seconds,
        )

    async def _chime_part(self, request: AnnounceRequest) -> Part | None:
        """The chime the call asks for, else the stream's, or None for none."""
        options = self._options
        preannounce = request.preannounce
        if preannounce is None:
            preannounce = bool(opt.PREANNOUNCE.read(options))
        if not preannounce:
            return None
        return await self._media_part(
            request.preannounce_media_id or opt.PREANNOUNCE_SOUND.read(options),
            cache=True,
            request=request,
        )

    def _sequence(
        self, request: AnnounceRequest, chime: Part | None, body: list[Part]
    ) -> list[Part]:
        """Lead-in, chime and body, then each repetition after its gap."""
        options = self._options
        lead_in = request.lead_in
        if lead_in is None:
            lead_in = float(opt.LEAD_IN.read(options))
        repeat = request.repeat or int(opt.REPEAT.read(options))
        parts: list[Part] = []
        if lead_in > 0:
            parts.append(_silence_part(lead_in))
        if chime is not None:
            parts.append(chime)
        parts += body
        for _ in range(repeat - 1):
            if request.repeat_gap > 0:
                parts.append(_silence_part(request.repeat_gap))
            if chime is not None and request.repeat_preannounce:
                parts.append(chime)
            # Each repetition is produced again: the local voice and the
            # chime come from the cache, another engine is asked again.
            parts += body
        return parts

    async def async_announce(
        self, request: AnnounceRequest, *, call: object
    ) -> dict[str, Any] | None:
        """Announce on this stream as part of the action call `call`.

        Returns what `return_response` gives for this stream, or None when
        another stream of the call failed (that stream's error is the call's).
        """
        group, member = CallGroup.join(self._hass, call, self, request)
        try:
            # Let the call's other streams join before anything is decided.
            await asyncio.sleep(0)
            self.check_room(request)
            member.plan = await self.async_plan(request)
        except BaseException as err:
            member.error = err
            raise
        finally:
            group.planned()
        await group.queued.wait()
        if member.error is not None:
            raise member.error
        if member.item is None:
            return None
        if request.wait:
            try:
                await self._wait_bounded(member.item, request)
            finally:
                # The outcome is reported before the call returns.
                self.stream.queue.drop(member.item)
                self.item_changed(member.item)
        return response_for(member.item, group.called_at)

    def check_room(self, request: AnnounceRequest) -> None:
        """Raise if the announcement cannot be queued right now."""
        entity_id = self.entity_id or self.stream.label
        if not self.stream.available and request.wait:
            # Fire-and-forget callers get queued for when the stream returns.
            raise failure("stream_unavailable", entity_id=entity_id)
        if len(self.stream.queue) >= self.stream.queue.max_items:
            raise self._queue_full()

    def enqueue(self, plan: Plan) -> PlaybackItem:
        """Queue the planned announcement and start producing its audio."""
        item = self.stream.new_item(
            title=plan.title,
            gain=plan.gain,
            priority=plan.priority.rank,
            resumable=plan.resumable,
        )
        item.max_seconds = plan.max_seconds
        item.display_text = plan.display_text
        item.display_seconds = plan.display_seconds
        item.tags["entity_id"] = self.entity_id
        try:
            self.stream.queue.add(item)
        except QueueFullError as err:
            raise self._queue_full() from err
        self.stream.run_producer(self._produce(item, plan.parts), item)
        return item

    def _queue_full(self) -> HomeAssistantError:
        return failure(
            "queue_full",
            entity_id=self.entity_id or self.stream.label,
            limit=str(self.stream.queue.max_items),
        )

    @callback
    def item_changed(self, item: PlaybackItem) -> None:
        """Fire the announcement event for a change automations can use."""
        event_type = _EVENT_TYPES.get(item.state)
        if event_type is None or item.tags.get("reported") == item.state:
            return
        item.tags["reported"] = item.state
        if item.state is ItemState.PLAYING and item.resumes:
            event_type = "resumed"
        data: dict[str, Any] = {
            "type": event_type,
            "entity_id": item.tags.get("entity_id"),
            "announcement_id": item.id,
            "text": item.title,
        }
        # Who cut off whom: the interrupting one names those it cut off, the
        # one cut off names the last one that did.
        if item.interrupted:
            data["interrupted"] = list(item.interrupted)
        if item.interrupted_by:
            data["interrupted_by"] = item.interrupted_by[-1]
        if item.error is not None:
            data["error"] = redact_text(str(item.error))
        if "engine" in item.tags:
            data["engine"] = item.tags["engine"]
            data["fallback"] = item.tags["fallback"]
        self._hass.bus.async_fire(EVENT_ANNOUNCEMENT, data)

    async def _produce(self, item: PlaybackItem, parts: list[Part]) -> None:
        try:
            for part in parts:
                if await part(item) is False:
                    return
            item.end()
        except AnnouncerError as err:
            item.fail(err)
        except HomeAssistantError as err:
            item.fail(DecodeError(str(err)))
        except Exception as err:  # noqa: BLE001 - one broken part fails one item
            LOGGER.error(
                "%s: announcement %s failed: %s",
                self.entity_id or self.stream.label,
                item.id,
                redact_text(repr(err)),
            )
            item.fail(AnnouncerError(redact_text(str(err)) or type(err).__name__))
        finally:
            # Failed before it played: out of the queue and reported now, not
            # when the clock reaches it.
            self.stream.queue.drop(item)

    async def _message_part(self, message: str, request: AnnounceRequest) -> Part:
        """The words: the call's engine or the stream's default, then a fallback.

        An engine that cannot even be asked (missing, refusing the language or
        an option) leaves the words to the other one; if neither can, the
        first one's refusal is the call's error.
        """
        voices = self.voices
        primary = request.tts_entity_id or voices.default_engine()
        # The fallback speaks with its own defaults, in the call's language.
        fallback_request = replace(request, options={})
        if not request.tts_entity_id and primary == voices.configured_engine:
            # The stream's own choice of language and voice, unless the call's.
            default_options = {"voice": voices.voice} if voices.voice else {}
            request = replace(
                request,
                language=request.language or voices.language,
                options=request.options or default_options,
            )
        fallback = voices.fallback_engine(primary)
        speakers: list[_Speaker] = []
        refusal: HomeAssistantError | None = None
        for engine, engine_request in (
            (primary, request),
            (fallback, fallback_request),
        ):
            if engine is None:
                continue
            try:
                speakers.append(await self._speaker(engine, message, engine_request))
            except HomeAssistantError as err:
                LOGGER.warning(
                    "%s: %s cannot speak this: %s",
                    self.entity_id or self.stream.label,
                    engine,
                    err,
                )
                refusal = refusal or err
        if not speakers:
            if refusal is not None:
                raise refusal
            raise validation_error("no_voice", entity_id=self.entity_id or "")
        return self._voices_part(message, speakers, fallback=fallback)

    async def _speaker(
        self, engine: str, message: str, request: AnnounceRequest
    ) -> _Speaker:
        """Prepare one engine to speak the message: checked, not yet asked."""
        if self._is_own_tts(engine):
            return await self._local_speaker(engine, message, request)
        voice = TtsEntityVoice(
            self._hass,
            engine,
            binary=self.stream.binary,
            options=request.options,
            limits=self.limits(request),
        )
        try:
            voice.prepare(request.language)
        except HomeAssistantError as err:
            raise validation_error(
                "tts_failed", entity_id=engine, error=str(err)
            ) from err
        rate = self.stream.settings.sample_rate
        # The first call speaks with the result stream prepared above; a
        # repetition opens another one, in the same language.
        return _Speaker(
            engine,
            lambda: voice.stream(message, sample_rate=rate, language=request.language),
            voice=voice,
        )

    def _voices_part(
        self, message: str, speakers: list[_Speaker], *, fallback: str | None
    ) -> Part:
        """Speak with the first engine that gives audio in time.

        An engine whose breaker is open is passed over while another remains.
        An engine fails when it raises or gives no first audio within the
        stream's `first_audio_timeout`; the next one then speaks the whole
        text. What the failing engine had already fed to the stream stays
        fed: after a failure midway the listener hears the fallback start the
        text again.
        """
        voices = self.voices
        timeout = voices.first_audio_timeout

        async def play(item: PlaybackItem) -> bool:
            error: BaseException | None = None
            for index, speaker in enumerate(speakers):
                breaker = voices.breaker(speaker.engine)
                allowed = breaker.allow()
                if not allowed and index < len(speakers) - 1:
                    continue
                try:
                    spoken = await _speak(item, speaker, timeout, fallback=fallback)
                except (AnnouncerError, HomeAssistantError, TimeoutError) as err:
                    LOGGER.warning(
                        "%s: %s could not speak (%s)%s",
                        self.entity_id or self.stream.label,
                        speaker.engine,
                        engine_failure(err),
                        "" if index == len(speakers) - 1 else "; trying the next",
                    )
                    if allowed:
                        breaker.record_failure()
                    error = err
                    continue
                breaker.record_success()
                return spoken
            assert error is not None  # noqa: S101
            if isinstance(error, TimeoutError):
                msg = f"no audio within {timeout:g} s"
                raise SpeechEngineError(msg) from error
            if isinstance(error, HomeAssistantError):
                raise SpeechEngineError(str(error)) from error
            raise error

        return play

    async def _local_speaker(
        self, entity_id: str, message: str, request: AnnounceRequest
    ) -> _Speaker:
        voice, speech = await async_resolve_speech(
            self._speech.engine,
            request.language or self._hass.config.language,
            request.options,
        )
        text = normalize_text(message, voice.language)
        return _Speaker(entity_id, self._local_audio(text, voice, speech))

    def _local_audio(
        self, text: str, voice: VoiceInfo, options: SpeechOptions
    ) -> Callable[[], AsyncGenerator[bytes]]:
        """The local voice's audio of `text`, from the cache when it was made."""
        rate = self.stream.settings.sample_rate
        key = ("speech", text, voice.identifier, options, rate)
        cache = self._speech.cache
        engine = self._speech.engine

        async def audio() -> AsyncGenerator[bytes]:
            cached = cache.get(key)
            if cached is not None:
                step = int(rate * _FEED_SECONDS) * BYTES_PER_SAMPLE
                for start in range(0, len(cached), step):
                    yield cached[start : start + step]
                return
            rendered = bytearray()
            try:
                async with aclosing(
                    engine.stream_with(
                        text, options, sample_rate=rate, voice=voice.identifier
                    )
                ) as chunks:
                    async for pcm in chunks:
                        rendered += pcm
                        yield pcm
            except SpeechEngineError as err:
                raise speech_error(err) from err
            cache.put(key, bytes(rendered))

        return audio

    async def _wait_bounded(self, item: PlaybackItem, request: AnnounceRequest) -> None:
        """Wait for the item's outcome within its limits and the queue's wait.

        The bound is the time it may wait in the queue plus its source's time
        limit, renewed while it plays and its audio goes on. Past it the call
        gets a translated error; the announcement keeps its own outcome.
        """
        limit = self.limits(request).total
        bound = (self.stream.queue.max_age or 0.0) + limit
        played = -1
        while True:
            try:
                async with asyncio.timeout(bound):
                    await async_wait_played(item)
            except TimeoutError:
                if item.state is ItemState.PLAYING and item.samples_played > played:
                    played = item.samples_played
                    bound = limit
                    continue
                raise failure(
                    "announcement_timeout",
                    entity_id=self.entity_id or self.stream.label,
                ) from None
            return

    def limits(self, request: AnnounceRequest) -> DecodeLimits:
        """How long the announcement's audio source may keep it waiting."""
        options = self._options
        total = request.timeout or float(opt.SOURCE_TIMEOUT.read(options))
        return DecodeLimits(
            first_audio=min(DEFAULT_LIMITS.first_audio, total),
            total=total,
            network_io=float(opt.NETWORK_TIMEOUT.read(options)),
        )

    def _tts_stream_part(self, media_id: str, token: str, limits: DecodeLimits) -> Part:
        """Play a TTS result stream that someone else created and filled."""
        result = tts.async_get_stream(self._hass, token)
        if result is None:
            raise decode_failed(
                media_id, "no such TTS result stream (it may have expired)"
            )
        return self._result_part(result, limits)

    def _result_part(self, result: tts.ResultStream, limits: DecodeLimits) -> Part:
        """Decode a TTS entity's audio as it comes."""
        stream = self.stream

        async def play(item: PlaybackItem) -> bool:
            produced = await decode_to(
                item.feed,
                engine_audio(result.async_stream_result()),
                binary=stream.binary,
                sample_rate=stream.settings.sample_rate,
                item=item,
                limits=limits,
            )
            return produced is not None and not item.done and item.error is None

        return play

    def _is_own_tts(self, entity_id: str) -> bool:
        entry = er.async_get(self._hass).async_get(entity_id)
        return entry is not None and entry.platform == DOMAIN

    async def _media_part(
        self, media_id: str, *, cache: bool, request: AnnounceRequest
    ) -> Part:
        if media_id in SOUNDS:
            source = str(_SOUNDS_DIR / f"{media_id}.flac")
        else:
            source, _ = await async_resolve_media_source(
                self._hass, media_id, self.entity_id or ""
            )
        stream = self.stream
        rate = stream.settings.sample_rate
        pcm_cache = self._speech.cache
        limits = self.limits(request)
        key = ("media", source, rate)
        # Only local files are cached: a URL may change behind our back.
        cacheable = cache and source.startswith("/")

        async def play(item: PlaybackItem) -> bool:
            cached = pcm_cache.get(key) if cacheable else None
            if cached is not None:
                return await _feed_all(item, cached)
            rendered = bytearray()

            keep = cacheable

            async def feed(data: bytes) -> bool:
                nonlocal keep
                if keep:
                    rendered.extend(data)
                    if len(rendered) > pcm_cache.max_entry_bytes:
                        # Too big to keep: played, not held in memory.
                        keep = False
                        rendered.clear()
                return await item.feed(data)

            produced = await decode_to(
                feed,
                source,
                binary=stream.binary,
                sample_rate=rate,
                item=item,
                limits=limits,
            )
            if produced is None or item.done or item.error is not None:
                return False
            if keep:
                pcm_cache.put(key, bytes(rendered))
            return True

        return play


@dataclass(frozen=True, slots=True)
class _Speaker:
    """One engine, ready to speak the words of one announcement."""

    engine: str
    open: Callable[[], AsyncGenerator[bytes]]
    voice: VoiceEngine | None = None


async def _speak(
    item: PlaybackItem, speaker: _Speaker, first_audio: float, *, fallback: str | None
) -> bool:
    """Feed the speaker's audio; raise if it fails or is silent too long."""
    async with aclosing(speaker.open()) as audio:
        chunks = aiter(audio)
        try:
            async with asyncio.timeout(first_audio):
                first = await anext(chunks)
        except StopAsyncIteration:
            msg = f"{speaker.engine} gave no audio"
            raise SpeechEngineError(msg) from None
        item.tags["engine"] = speaker.engine
        item.tags["fallback"] = speaker.engine == fallback
        if not await item.feed(first):
            return False
        async for pcm in chunks:
            if not await item.feed(pcm):
                return False
    return True


@dataclass(frozen=True, slots=True)
class TtsMessage:
    """A TTS media-source id that carries its message (what `tts.speak` sends)."""

    engine: str
    message: str
    language: str | None
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TtsStream:
    """A TTS media-source id of a result stream created earlier."""

    token: str


def parse_tts_media_id(media_id: str) -> TtsMessage | TtsStream:
    """Read a TTS media-source id, or raise `ValueError`.

    The shapes are `media-source://tts/-stream-/<token>` and
    `media-source://tts/<engine>?message=…` with optional `language`, `cache`
    and either `tts_options` (JSON, what Home Assistant generates) or one query
    parameter per option (older ids, still accepted by Home Assistant).
    """
    url = URL(media_id)
    if url.scheme != "media-source" or url.host != "tts":
        msg = "not a TTS media-source id"
        raise ValueError(msg)
    segments = url.path.removeprefix("/").split("/")
    if segments[0] == _TTS_STREAM_PATH:
        if len(segments) != 2 or not segments[1]:  # noqa: PLR2004
            msg = "no result stream named"
            raise ValueError(msg)
        return TtsStream(token=segments[1])
    if len(segments) != 1:
        msg = f"not a TTS engine: {url.path.removeprefix('/')}"
        raise ValueError(msg)
    query = url.query
    if "message" not in query:
        msg = "No message specified."
        raise ValueError(msg)
    options: Any
    if "tts_options" in query:
        try:
            options = json.loads(query["tts_options"])
        except json.JSONDecodeError as err:
            msg = f"Invalid TTS options: {err.msg}"
            raise ValueError(msg) from err
        if options is None:
            options = {}
        if not isinstance(options, dict):
            msg = "Invalid TTS options: not an object"
            raise ValueError(msg)
    else:
        options = {
            key: value
            for key, value in query.items()
            if key not in ("message", "language", "cache")
        }
    return TtsMessage(
        engine=segments[0],
        message=query["message"],
        language=query.get("language"),
        options=options,
    )


def _tts_media(media_id: str) -> TtsMessage | TtsStream:
    try:
        return parse_tts_media_id(media_id)
    except ValueError as err:
        raise decode_failed(media_id, err) from err


def _silence_part(seconds: float) -> Part:
    """Silence inside the announcement: a lead-in or a gap between repetitions."""

    async def play(item: PlaybackItem) -> bool:
        samples = round(seconds * item.sample_rate)
        return await _feed_all(item, bytes(samples * BYTES_PER_SAMPLE))

    return play


async def _feed_all(item: PlaybackItem, pcm: bytes) -> bool:
    step = int(item.sample_rate * _FEED_SECONDS) * BYTES_PER_SAMPLE
    for start in range(0, len(pcm), step):
        if not await item.feed(pcm[start : start + step]):
            return False
    return True


def response_for(item: PlaybackItem, called_at: float) -> dict[str, Any]:
    """What `return_response` gives for one stream."""
    delay = None if item.started_at is None else (item.started_at - called_at) * 1000
    return {
        "announcement_id": item.id,
        "state": str(item.state),
        "duration": round(item.duration, 3) if item.done else None,
        "delay_ms": None if delay is None else round(delay, 1),
        "engine": item.tags.get("engine"),
        "fallback": item.tags.get("fallback", False),
        # Those it cut off, those that cut it off, and how often it was
        # played again from its start after that.
        "interrupted": list(item.interrupted),
        "interrupted_by": list(item.interrupted_by),
        "resumed": item.resumes,
    }


async def async_wait_played(item: PlaybackItem) -> None:
    """Wait until the item has played; raise its failure as a translated error."""
    await item.wait()
    if item.error is not None and item.state is not ItemState.CANCELLED:
        raise failure("announcement_failed", error=str(item.error))
