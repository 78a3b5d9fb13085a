"""The speech engine: requests from the event loop, PCM streamed back to it."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

from custom_components.rtsp_announcer.audio.exceptions import (
    AnnouncerError,
    InvalidOptionError,
    SpeechEngineError,
    SpeechUnavailableError,
)
from custom_components.rtsp_announcer.audio.pcm import LeadingSilenceTrimmer, apply_gain
from custom_components.rtsp_announcer.audio.resample import (
    MAX_RATE,
    MIN_RATE,
    StreamResampler,
)

from .espeak import NATIVE_RATE, BackendLoader, SpeechBackend, load_espeak
from .models import SpeechOptions, SpeechStats, VoiceInfo
from .sentences import split_sentences
from .voices import DEFAULT_LANGUAGE, VoiceCatalog
from .worker import STUCK_MESSAGE, CallJob, Job, SynthJob, Worker

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 5.0
ENGINE_NAME = "espeak-ng"


def _check_sample_rate(sample_rate: int) -> None:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int)
        or not MIN_RATE <= sample_rate <= MAX_RATE
    ):
        msg = (
            f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}, "
            f"got {sample_rate!r}"
        )
        raise InvalidOptionError(msg)


def _noop(backend: SpeechBackend) -> None:
    """Nothing: the job itself loads and initialises the library."""


def _list_voices(backend: SpeechBackend) -> list[VoiceInfo]:
    return backend.list_voices()


class HowToSpeak(TypedDict, total=False):
    """How `SpeechEngine.stream` speaks, beside its text and sample rate."""

    voice: str | None
    language: str | None
    rate: int | None
    pitch: int | None
    volume: float | None
    gap: int | None


class SpeechEngine:
    """Speaks text with libespeak-ng on one dedicated thread.

    The thread starts on first use and ends with `async_stop()`; the engine can
    be used again afterwards. Use one engine per process (share it between
    config entries): engines sharing the library take turns, but each has a
    thread of its own.

    It is a `VoiceEngine`: `stream()` takes espeak's prosody options besides
    the language and voice every engine takes.
    """

    def __init__(
        self,
        *,
        loader: BackendLoader = load_espeak,
        timeout: float = DEFAULT_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        """Create an idle engine.

        Args:
            loader: Returns the backend; called once in the speech thread.
                Defaults to libespeak-ng through pyttsx3's binding.
            timeout: Seconds one library call may take before the request
                fails and the thread is replaced.
            stop_timeout: Seconds `async_stop()` waits for threads to end.
        """
        self._loader = loader
        self._timeout = timeout
        self._stop_timeout = stop_timeout
        self._worker: Worker | None = None
        # Replaced threads that may still be inside the library.
        self._stuck: list[Worker] = []
        self._retired: list[threading.Thread] = []
        self._native_rate = NATIVE_RATE
        self._unavailable: SpeechUnavailableError | None = None
        self._catalog: VoiceCatalog | None = None
        self.stats = SpeechStats()

    async def __aenter__(self) -> Self:
        """Start the engine."""
        await self.async_start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the engine."""
        await self.async_stop()

    @property
    def name(self) -> str:
        """The engine's name, for logs and diagnostics."""
        return ENGINE_NAME

    @property
    def native_rate(self) -> int:
        """Sample rate espeak synthesises at, in Hz."""
        return self._native_rate

    @property
    def catalog(self) -> VoiceCatalog | None:
        """The voices once read (after `async_start()`), for synchronous callers."""
        return self._catalog

    @property
    def running(self) -> bool:
        """Whether the speech thread is alive."""
        return self._worker is not None and self._worker.thread.is_alive()

    # -- life cycle -----------------------------------------------------------

    async def async_start(self) -> None:
        """Start the thread, load the library and read its voices.

        Optional: every request starts the engine when needed.

        Raises:
            SpeechUnavailableError: libespeak-ng cannot be loaded.
            SpeechEngineError: the library failed or timed out.
        """
        await self._call(_noop)
        await self._get_catalog()

    async def async_stop(self) -> None:
        """End the speech thread and wait for it without blocking the loop.

        Queued and running requests fail with SpeechEngineError. Safe to call
        more than once; the next request starts a new thread.
        """
        worker, self._worker = self._worker, None
        threads = [*self._retired, *(stuck.thread for stuck in self._stuck)]
        current: Job[Any] | None = None
        if worker is not None:
            error = SpeechEngineError("Speech engine stopped")
            for job in worker.take_pending():
                job.cancelled.set()
                job.fail(error)
            current = worker.stop()
            if current is not None:
                current.cancelled.set()
                current.fail(error)
            threads.append(worker.thread)
        self._unavailable = None
        await self._wait_threads(threads)
        # Let the threads' last reports run, which disarm their watchdogs.
        await asyncio.sleep(0)
        # A thread still stuck in C cannot be joined; it is a daemon, and the
        # next thread keeps out of the library until it returns.
        if (
            worker is not None
            and current is not None
            and worker.thread.is_alive()
            and worker.abandon_if_running(current)
        ):
            self._stuck.append(worker)
            self._retired.append(worker.thread)
        self._retired = [thread for thread in self._retired if thread.is_alive()]
        self._stuck = [stuck for stuck in self._stuck if stuck.stuck]

    async def _wait_threads(self, threads: Sequence[threading.Thread]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stop_timeout
        delay = 0.001
        for thread in threads:
            while thread.is_alive():
                if loop.time() >= deadline:
                    _LOGGER.warning(
                        "Speech thread %s did not end within %.1f s",
                        thread.ident,
                        self._stop_timeout,
                    )
                    return
                # Polling, because join() would block the event loop.
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _ensure_worker(self) -> Worker:
        loop = asyncio.get_running_loop()
        worker = self._worker
        if worker is not None:
            if worker.loop is not loop:
                msg = "The speech engine is running in another event loop"
                raise SpeechEngineError(msg)
            return worker
        worker = self._worker = Worker(
            self, loop, loader=self._loader, predecessors=list(self._stuck)
        )
        worker.start()
        return worker

    def _submit[T](self, job: Job[T]) -> None:
        if self._unavailable is not None:
            raise SpeechUnavailableError(str(self._unavailable))
        self._stuck = [worker for worker in self._stuck if worker.stuck]
        if self._stuck:
            raise SpeechEngineError(STUCK_MESSAGE)
        self._ensure_worker().jobs.put(job)

    async def _call[T](self, call: Callable[[SpeechBackend], T]) -> T:
        job = CallJob(asyncio.get_running_loop(), call)
        try:
            self._submit(job)
            return await self._settle(job)
        finally:
            job.cancel()

    async def _settle[T](self, job: Job[T]) -> T:
        try:
            return await job.future
        except SpeechUnavailableError as err:
            # Fail every later request at once, until a stop() allows a retry.
            self._unavailable = err
            raise

    # -- callbacks from the speech thread, run in the loop --------------------

    def _job_started(self, worker: Worker, job: Job[Any]) -> None:
        # Armed even for a job given up on: it occupies the thread all the same.
        job.timer = asyncio.get_running_loop().call_later(
            self._timeout, self._job_timed_out, worker, job
        )

    def _job_timed_out(self, worker: Worker, job: Job[Any]) -> None:
        job.timer = None
        stuck = worker.abandon_if_running(job)
        job.cancelled.set()
        self.stats.timeouts += 1
        message = f"Speech synthesis did not finish within {self._timeout:g} s"
        if not stuck:
            # The thread finished just now; its result is on its way.
            job.fail(SpeechEngineError(message))
            return
        job.fail(SpeechEngineError(f"{message}; the speech thread was replaced"))
        _LOGGER.error(
            "%s; starting a new speech thread, which keeps out of libespeak-ng "
            "until the old one returns",
            message,
        )
        self._stuck.append(worker)
        self._retired.append(worker.thread)
        if self._worker is not worker:
            return
        self._worker = None
        self.stats.restarts += 1
        replacement = self._ensure_worker()
        for pending in worker.take_pending():
            replacement.jobs.put(pending)

    def _worker_recovered(self, worker: Worker) -> None:
        _LOGGER.warning("The stuck speech thread left libespeak-ng; speech resumes")
        if worker in self._stuck:
            self._stuck.remove(worker)

    def _set_native_rate(self, rate: int) -> None:
        self._native_rate = rate

    # -- voices -----------------------------------------------------------------

    async def _get_catalog(self) -> VoiceCatalog:
        if self._catalog is None:
            # Concurrent first callers may each list the voices: it costs a
            # millisecond, less than coordinating them would.
            voices = await self._call(_list_voices)
            if self._catalog is None:
                self._catalog = VoiceCatalog(voices)
        return self._catalog

    async def voices(self) -> list[VoiceInfo]:
        """Every espeak-ng voice (variants excluded). Cached after one call."""
        return list((await self._get_catalog()).voices)

    async def supported_languages(self) -> list[str]:
        """Language codes to offer Home Assistant, in BCP 47 spelling."""
        return (await self._get_catalog()).supported_languages()

    async def voices_for_language(self, language: str) -> list[VoiceInfo]:
        """Voices that speak `language`, best first.

        Raises:
            UnknownLanguageError: no voice speaks it.
        """
        return (await self._get_catalog()).candidates(language)

    async def resolve_voice(self, language: str, voice: str | None = None) -> VoiceInfo:
        """Pick the voice for a request.

        `voice`, when given, is an identifier or name and wins; the language
        must still be one espeak speaks. Without it, the language's best voice
        (lowest priority) is used.

        Raises:
            UnknownLanguageError: no voice speaks `language`.
            UnknownVoiceError: `voice` is not an espeak voice.
        """
        catalog = await self._get_catalog()
        best = catalog.resolve(language)
        return best if voice is None else catalog.find_voice(voice)

    # -- synthesis ----------------------------------------------------------------

    def stream(
        self,
        text: str,
        *,
        sample_rate: int,
        voice: str | None = None,
        language: str | None = None,
        rate: int | None = None,
        pitch: int | None = None,
        volume: float | None = None,
        gap: int | None = None,
    ) -> AsyncGenerator[bytes]:
        """Speak `text`, yielding s16le mono PCM at `sample_rate` as it comes.

        Sentences are synthesised one after another (the next while the
        current one is consumed), each streamed in ~60 ms chunks as espeak
        produces them. The audio starts 5 ms before the first sound: espeak's
        own leading silence (12-50 ms) is trimmed. Leaving the iteration
        early (break plus `aclose()`, or cancelling the task) aborts the
        synthesis; wrap the generator in `contextlib.aclosing` so that
        happens at once.

        Args:
            text: What to say; empty or unspeakable text yields nothing.
            sample_rate: Output rate, 8000-48000 Hz.
            voice: espeak voice identifier or name; wins over `language`.
            language: Language code (`en`, `en-US`, `zh-CN`, ...); default `en`.
            rate: Words per minute, 80-450 (default 175).
            pitch: 0-100 (default 50).
            volume: 0-1, amplitude gain volume squared (default 1).
            gap: Pause between words in 10 ms units, 0-100 (default 0).

        Raises:
            InvalidOptionError: at once, for a bad option or sample rate.
            UnknownLanguageError, UnknownVoiceError, SpeechEngineError,
            SpeechUnavailableError: from the iteration.
        """
        options = SpeechOptions.create(rate=rate, pitch=pitch, volume=volume, gap=gap)
        _check_sample_rate(sample_rate)
        return self._stream(
            text,
            sample_rate=sample_rate,
            voice=voice,
            language=language or DEFAULT_LANGUAGE,
            options=options,
        )

    def stream_with(
        self,
        text: str,
        options: SpeechOptions,
        *,
        sample_rate: int,
        voice: str | None = None,
    ) -> AsyncGenerator[bytes]:
        """`stream` with the prosody of already validated `options`."""
        return self.stream(
            text,
            sample_rate=sample_rate,
            voice=voice,
            rate=options.rate,
            pitch=options.pitch,
            volume=options.volume,
            gap=options.gap,
        )

    async def _stream(
        self,
        text: str,
        *,
        sample_rate: int,
        voice: str | None,
        language: str,
        options: SpeechOptions,
    ) -> AsyncGenerator[bytes]:
        chosen = await self.resolve_voice(language, voice)
        sentences = split_sentences(text)
        if not sentences:
            return
        resampler = StreamResampler(self.native_rate, sample_rate)
        # Only the silence before the first sentence: pauses between sentences
        # are espeak's natural rhythm.
        trimmer = LeadingSilenceTrimmer(sample_rate)
        native = self._native_chunks(sentences, chosen.identifier, options)
        # After the trimmer, so that what counts as silence does not depend
        # on the volume.
        gain = options.gain
        async with aclosing(native) as chunks:
            async for chunk in chunks:
                if pcm := trimmer.process(resampler.process(chunk)):
                    yield apply_gain(pcm, gain)
                # A whole sentence may be waiting, and taking it from the queue
                # does not suspend: let the loop run between items.
                await asyncio.sleep(0)
        if tail := trimmer.process(resampler.flush()) + trimmer.flush():
            yield apply_gain(tail, gain)

    async def _native_chunks(
        self, sentences: Sequence[str], voice: str, options: SpeechOptions
    ) -> AsyncGenerator[bytes]:
        loop = asyncio.get_running_loop()
        pending = deque(sentences)
        jobs: deque[SynthJob] = deque()

        def submit_next() -> None:
            if pending:
                job = SynthJob(
                    loop,
                    text=pending.popleft(),
                    voice=voice,
                    options=options,
                    stats=self.stats,
                )
                jobs.append(job)
                self._submit(job)

        failed = False
        try:
            submit_next()
            while jobs:
                job = jobs[0]
                # One sentence synthesises ahead of the one being consumed, so
                # the next starts without a gap but memory stays bounded.
                if len(jobs) < 2:  # noqa: PLR2004
                    submit_next()
                while (chunk := await job.chunks.get()) is not None:
                    yield chunk
                await self._settle(job)
                jobs.popleft()
                self.stats.syntheses += 1
        except AnnouncerError:
            failed = True
            self.stats.failed += 1
            raise
        finally:
            if jobs and not failed:
                self.stats.cancelled += 1
            for job in jobs:
                job.cancel()

    async def synthesize(
        self, text: str, *, sample_rate: int | None = None, **how: Unpack[HowToSpeak]
    ) -> bytes:
        """Speak `text` and return all of its PCM (s16le mono).

        `sample_rate` None returns espeak's native rate (`native_rate`, 22050
        Hz). Other arguments and errors as for `stream`.
        """
        if sample_rate is None:
            # Reject bad options before the library is even started.
            SpeechOptions.create(
                rate=how.get("rate"),
                pitch=how.get("pitch"),
                volume=how.get("volume"),
                gap=how.get("gap"),
            )
            await self._get_catalog()
            sample_rate = self.native_rate
        audio = self.stream(text, sample_rate=sample_rate, **how)
        async with aclosing(audio) as chunks:
            return b"".join([chunk async for chunk in chunks])
