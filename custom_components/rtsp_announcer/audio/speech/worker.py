"""The one thread that owns libespeak-ng, and the requests it runs.

libespeak-ng is not thread-safe: two threads inside it at once crash the
process (segfaults, SIGFPE, heap corruption), and pyttsx3's Engine adds hangs
of its own. So the library is driven through pyttsx3's bare ctypes binding,
in synchronous mode with a synth callback, from exactly one thread that the
engine owns. The event loop queues requests to that thread; results and PCM
chunks come back through `loop.call_soon_threadsafe` while synthesis is still
running, so playback can start after the first ~60 ms buffer.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from custom_components.rtsp_announcer.audio.exceptions import (
    AnnouncerError,
    SpeechEngineError,
    SpeechUnavailableError,
)
from custom_components.rtsp_announcer.audio.models import BYTES_PER_SAMPLE

from .espeak import BackendLoader, SpeechBackend
from .models import SpeechOptions, SpeechStats

if TYPE_CHECKING:
    from .engine import SpeechEngine

_LOGGER = logging.getLogger(__name__)

THREAD_NAME = "rtsp_announcer-espeak"
# Chunks joined into one item for the consumer: about half a second of audio.
_CHUNKS_PER_ITEM = 8

STUCK_MESSAGE = (
    "Speech engine unavailable: a previous synthesis is still stuck inside "
    "libespeak-ng and the library cannot be used until it returns"
)


# Every call into one library object is serialised by its lock, across all
# engines in the process: a second engine must never run beside the first.
_GUARDS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
# Guards the small bookkeeping shared by the loop and the speech threads.
_STATE = threading.Lock()


def _guard_for(backend: SpeechBackend) -> threading.Lock:
    with _STATE:
        lock = _GUARDS.get(backend)
        if lock is None:
            lock = _GUARDS[backend] = threading.Lock()
        return lock


class Job[T]:
    """One request for the speech thread, settled in the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """A request bound to `loop`, where it is settled."""
        self.loop = loop
        self.future: asyncio.Future[T] = loop.create_future()
        # Read by the speech thread inside the synth callback.
        self.cancelled = threading.Event()
        self.timer: asyncio.TimerHandle | None = None

    def execute(self, backend: SpeechBackend) -> T:
        """Do the work; runs in the speech thread."""
        raise NotImplementedError

    def resolve(self, value: T) -> None:
        """Settle with a result (loop side)."""
        self._disarm()
        if not self.future.done():
            self.future.set_result(value)

    def fail(self, error: BaseException) -> None:
        """Settle with an error (loop side)."""
        self._disarm()
        if not self.future.done():
            self.future.set_exception(error)

    def cancel(self) -> None:
        """Give up on the job: skipped if queued, aborted if running.

        The watchdog stays armed: a cancelled job that hangs still blocks the
        thread, and the thread reports every job it ran, which disarms it.
        """
        self.cancelled.set()
        if not self.future.done():
            self.future.cancel()

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class CallJob[T](Job[T]):
    """Runs a function against the backend and returns its result."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, call: Callable[[SpeechBackend], T]
    ) -> None:
        """A request to run `call` against the backend."""
        super().__init__(loop)
        self._call = call

    def execute(self, backend: SpeechBackend) -> T:
        """Run the call; runs in the speech thread."""
        return self._call(backend)


class SynthJob(Job[bool]):
    """Synthesises one sentence; PCM flows into `chunks`, None ends it.

    espeak makes a 60 ms chunk in ~40 us, far faster than the loop can take
    one wake-up per chunk; so chunks gather in `_pending` and the loop is
    woken once per gathering, taking whatever has accumulated by then. The
    result tells whether the synthesis was aborted.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        text: str,
        voice: str,
        options: SpeechOptions,
        stats: SpeechStats,
    ) -> None:
        """A request to say `text` with `voice` and `options`."""
        super().__init__(loop)
        self.text = text
        self.voice = voice
        self.options = options
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._stats = stats
        self._aborted = False
        self._pending: list[bytes] = []
        self._drain_posted = False
        self._lock = threading.Lock()

    def execute(self, backend: SpeechBackend) -> bool:
        """Synthesise the sentence; runs in the speech thread."""
        backend.set_voice(self.voice)
        backend.set_options(self.options)
        backend.synthesize(self.text, self._sink)
        if self._aborted:
            self._post(self._count_abort)
        return self._aborted

    def _sink(self, data: bytes) -> bool:
        # Runs in the speech thread, inside espeak's callback.
        if self.cancelled.is_set():
            self._aborted = True
            return False
        with self._lock:
            self._pending.append(data)
            if self._drain_posted:
                return True
            self._drain_posted = True
        if not self._post(self._drain):
            self._aborted = True
            return False
        return True

    def _post(self, callback: Callable[..., object], *args: object) -> bool:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            # The loop is closed: nobody will ever read this audio.
            self.cancelled.set()
            return False
        return True

    def _count_abort(self) -> None:
        self._stats.aborted += 1

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._drain_posted = False
        if self.future.done():
            return
        self._stats.chunks += len(pending)
        # Bounded items keep each step of the consumer (resampling) short.
        for start in range(0, len(pending), _CHUNKS_PER_ITEM):
            data = b"".join(pending[start : start + _CHUNKS_PER_ITEM])
            self._stats.samples += len(data) // BYTES_PER_SAMPLE
            self.chunks.put_nowait(data)

    def resolve(self, value: bool) -> None:  # noqa: FBT001
        """Settle with a result and end the chunks (loop side)."""
        super().resolve(value)
        self.chunks.put_nowait(None)

    def fail(self, error: BaseException) -> None:
        """Settle with an error and end the chunks (loop side)."""
        super().fail(error)
        self.chunks.put_nowait(None)


class Worker:
    """The thread that owns the library, and its request queue."""

    def __init__(
        self,
        engine: SpeechEngine,
        loop: asyncio.AbstractEventLoop,
        *,
        loader: BackendLoader,
        predecessors: Sequence[Worker],
    ) -> None:
        """A thread for `engine` that waits for `predecessors` to leave the library."""
        self.engine = engine
        self.loop = loop
        self.jobs: queue.Queue[Job[Any] | None] = queue.Queue()
        self._loader = loader
        self._backend: SpeechBackend | None = None
        # Abandoned threads that may still be inside the library: this one
        # must not enter it while any of them is.
        self._predecessors = tuple(predecessors)
        # The next four are shared with the loop under _STATE.
        self.current: Job[Any] | None = None
        self.abandoned = False
        self.stuck = False
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self.thread.start()

    def abandon_if_running(self, job: Job[Any]) -> bool:
        """Mark the thread stuck if it is still on `job` (loop side)."""
        with _STATE:
            if self.current is not job:
                return False
            self.abandoned = self.stuck = True
            return True

    def take_pending(self) -> list[Job[Any]]:
        """Remove and return the jobs not yet started (loop side)."""
        pending: list[Job[Any]] = []
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return pending
            if job is not None:
                pending.append(job)

    def stop(self) -> Job[Any] | None:
        """Ask the thread to end; returns the job it is running (loop side)."""
        with _STATE:
            self.stopping = True
            current = self.current
        self.jobs.put(None)
        return current

    def _leaving(self) -> bool:
        return self.abandoned or self.stopping

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            with _STATE:
                if self._leaving():
                    return
                if job.cancelled.is_set():
                    continue
                self.current = job
            self._post(self.engine._job_started, self, job)  # noqa: SLF001
            try:
                self._post(job.resolve, self._execute(job))
            except AnnouncerError as err:
                self._post(job.fail, err)
            except Exception as err:
                _LOGGER.exception("Speech synthesis failed")
                error = SpeechEngineError(f"Speech synthesis failed: {err!r}")
                error.__cause__ = err
                self._post(job.fail, error)
            finally:
                with _STATE:
                    self.current = None
                    recovered, self.stuck = self.stuck, False
                    leave = self._leaving()
                if recovered:
                    self._post(self.engine._worker_recovered, self)  # noqa: SLF001
            if leave:
                return

    def _execute[T](self, job: Job[T]) -> T:
        if any(worker.stuck for worker in self._predecessors):
            raise SpeechEngineError(STUCK_MESSAGE)
        backend = self._load()
        guard = _guard_for(backend)
        # Another engine may hold the library for a moment; wait, but give up
        # as soon as this request or this thread is no longer wanted.
        while not guard.acquire(timeout=0.05):
            if job.cancelled.is_set() or self._leaving():
                msg = "Speech request given up while waiting for libespeak-ng"
                raise SpeechEngineError(msg)
        try:
            if job.cancelled.is_set():
                msg = "Speech request cancelled"
                raise SpeechEngineError(msg)
            rate = backend.initialize()
            if rate != self.engine.native_rate:
                self._post(self.engine._set_native_rate, rate)  # noqa: SLF001
            return job.execute(backend)
        finally:
            guard.release()

    def _load(self) -> SpeechBackend:
        if self._backend is None:
            try:
                self._backend = self._loader()
            except SpeechUnavailableError:
                raise
            except Exception as err:
                msg = f"libespeak-ng cannot be loaded: {err}"
                raise SpeechUnavailableError(msg) from err
        return self._backend

    def _post(self, callback: Callable[..., object], *args: object) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            _LOGGER.debug("Event loop closed; speech result dropped")
