"""Local speech synthesis with libespeak-ng, streamed into the event loop.

libespeak-ng is not thread-safe: two threads inside it at once crash the
process (segfaults, SIGFPE, heap corruption), and pyttsx3's Engine adds hangs
of its own. So the engine drives the library through pyttsx3's bare ctypes
binding, in synchronous mode with a synth callback, from exactly one thread
that it owns. The event loop queues requests to that thread; results and PCM
chunks come back through `loop.call_soon_threadsafe` while synthesis is still
running, so playback can start after the first ~60 ms buffer.

Do not create a pyttsx3 `Engine` in the same process: it re-initialises the
library in another output mode and replaces the synth callback.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import logging
import queue
import re
import threading
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from .exceptions import (
    AnnouncerError,
    InvalidOptionError,
    SpeechEngineError,
    SpeechUnavailableError,
    UnknownLanguageError,
    UnknownVoiceError,
)
from .models import BYTES_PER_SAMPLE
from .resample import MAX_RATE, MIN_RATE, StreamResampler

_LOGGER = logging.getLogger(__name__)

THREAD_NAME = "rtsp_announcer-espeak"
# espeak-ng synthesises at 22050 Hz whatever the voice; confirmed at start-up.
NATIVE_RATE = 22050
# Audio per callback: the first chunk of any text is ready within about a
# millisecond, and its ~60 ms is more than the stream needs to start playing.
BUFFER_MS = 60
DEFAULT_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 5.0
DEFAULT_LANGUAGE = "en"

# espeak's own default (pyttsx3 uses 200): announcements reach people through
# loudspeakers and lossy codecs, where slightly slower speech is clearer.
DEFAULT_RATE = 175
DEFAULT_PITCH = 50
DEFAULT_VOLUME = 100
DEFAULT_GAP = 0
RATE_RANGE = (80, 450)
PITCH_RANGE = (0, 100)
VOLUME_RANGE = (0, 200)
GAP_RANGE = (0, 100)

MAX_SENTENCE_CHARS = 400

_BINDING_MODULE = "pyttsx3.drivers._espeak"
# Parameter numbers from espeak-ng's speak_lib.h; pyttsx3 names 7 after the
# older espeak, where it was internal.
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_WORDGAP = 7
_EE_OK = 0
# Chunks joined into one item for the consumer: about half a second of audio.
_CHUNKS_PER_ITEM = 8
_CALLBACK_CONTINUE = 0
_CALLBACK_ABORT = 1
# Bounds when walking the raw language list of a voice, in case it is corrupt.
_MAX_LANGUAGE_BYTES = 1024

_STUCK_MESSAGE = (
    "Speech engine unavailable: a previous synthesis is still stuck inside "
    "libespeak-ng and the library cannot be used until it returns"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceInfo:
    """One espeak-ng voice and the languages it speaks.

    Attributes:
        identifier: espeak's identifier as it spells it, e.g. `gmw/en-US`.
        name: Human readable name, e.g. `English (America)`.
        languages: (priority, language code) pairs; a lower priority is a
            better match for that language. Codes are lower case (`en-us`).
    """

    identifier: str
    name: str
    languages: tuple[tuple[int, str], ...]

    @property
    def language(self) -> str:
        """The voice's own language: the first one espeak lists."""
        return self.languages[0][1] if self.languages else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechOptions:
    """Validated prosody settings of one request.

    Attributes:
        rate: Words per minute, 80-450.
        pitch: Base pitch, 0-100 (50 is the voice's normal).
        volume: Amplitude, 0-200 (100 is normal; above it may clip).
        gap: Extra pause between words, in units of 10 ms, 0-100.
    """

    rate: int = DEFAULT_RATE
    pitch: int = DEFAULT_PITCH
    volume: int = DEFAULT_VOLUME
    gap: int = DEFAULT_GAP

    @classmethod
    def create(
        cls,
        *,
        rate: int | None = None,
        pitch: int | None = None,
        volume: int | None = None,
        gap: int | None = None,
    ) -> SpeechOptions:
        """Validate options; None keeps the default.

        Raises:
            InvalidOptionError: a value is not an integer or out of range.
        """
        return cls(
            rate=_checked("rate", rate, DEFAULT_RATE, RATE_RANGE),
            pitch=_checked("pitch", pitch, DEFAULT_PITCH, PITCH_RANGE),
            volume=_checked("volume", volume, DEFAULT_VOLUME, VOLUME_RANGE),
            gap=_checked("gap", gap, DEFAULT_GAP, GAP_RANGE),
        )


def _checked(name: str, value: object, default: int, bounds: tuple[int, int]) -> int:
    if value is None:
        return default
    low, high = bounds
    # bool is an int subclass, but `rate=True` is a mistake, not 1 wpm.
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an integer from {low} to {high}, got {value!r}"
        raise InvalidOptionError(msg)
    if not low <= value <= high:
        msg = f"{name} must be from {low} to {high}, got {value}"
        raise InvalidOptionError(msg)
    return value


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


@dataclass(slots=True)
class SpeechStats:
    """Running figures of an engine, for diagnostics and benchmarks.

    Attributes:
        syntheses: Sentences synthesised to the end.
        aborted: Syntheses cut short inside espeak by the callback.
        cancelled: Streams left before their end.
        failed: Streams ended by an error.
        timeouts: Library calls that overran the timeout.
        restarts: Speech threads replaced after a timeout.
        chunks: PCM chunks received from espeak.
        samples: Samples received from espeak, at the native rate.
    """

    syntheses: int = 0
    aborted: int = 0
    cancelled: int = 0
    failed: int = 0
    timeouts: int = 0
    restarts: int = 0
    chunks: int = 0
    samples: int = 0


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------

_WESTERN_END = r"[.!?\u2026]"
# Ideographic full stop and the full-width exclamation, question mark and
# semicolon, which need no space after them.
_CJK_END = r"[\u3002\uff01\uff1f\uff1b]"
# Closing quotes and brackets that may follow an end mark, Western and CJK.
_CLOSERS = r"[\"'\u201d\u2019\u00bb)\]\u300d\u300f\uff09]"
_BOUNDARY = re.compile(
    rf"(?:(?<={_WESTERN_END})|(?<={_WESTERN_END}{_CLOSERS}))\s+"
    rf"|(?:(?<={_CJK_END})|(?<={_CJK_END}{_CLOSERS}))(?!{_CLOSERS})\s*"
    r"|\s*\n\s*"
)
# Commas and colons (also the ideographic and full-width ones), or a space.
_SOFT_BREAK = re.compile(r"[,;:\u3001\uff0c\uff1a]\s*|\s+")
_SPEAKABLE = re.compile(r"\w")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "e.g", "i.e", "approx"}
)


def split_sentences(text: str, *, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split text into sentences to synthesise one by one.

    Boundaries are `.`, `!`, `?` and `…` followed by whitespace (so `3.5`
    stays whole), the Chinese full stop and full-width `!`, `?` and `;` with
    or without following space, and line breaks. Common abbreviations and
    initials (`Dr.`, `J.`) do not end a sentence. A sentence longer than
    `max_chars` is cut at a comma or space, which bounds the audio one piece
    holds in memory. Pieces without a letter or digit are dropped: they
    would only be silence.
    """
    text = text.replace("\x00", " ")
    pieces: list[str] = []
    carry = ""
    for raw in _BOUNDARY.split(text):
        piece = f"{carry} {raw}".strip() if carry else raw.strip()
        carry = ""
        if not piece:
            continue
        if _ends_with_abbreviation(piece):
            carry = piece
            continue
        pieces.append(piece)
    if carry:
        pieces.append(carry)
    sentences: list[str] = []
    for piece in pieces:
        sentences.extend(_wrap(piece, max_chars))
    return [sentence for sentence in sentences if _SPEAKABLE.search(sentence)]


def _ends_with_abbreviation(piece: str) -> bool:
    if not piece.endswith("."):
        return False
    word = piece.rsplit(maxsplit=1)[-1].rstrip(".").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _wrap(piece: str, max_chars: int) -> list[str]:
    parts: list[str] = []
    while len(piece) > max_chars:
        cut = max_chars
        for match in _SOFT_BREAK.finditer(piece, max_chars // 2, max_chars):
            cut = match.end()
        head, piece = piece[:cut].strip(), piece[cut:].strip()
        if head:
            parts.append(head)
    if piece:
        parts.append(piece)
    return parts


# --------------------------------------------------------------------------
# Languages and voices
# --------------------------------------------------------------------------

# Home Assistant's codes for Chinese name a script or a region; espeak names
# the spoken language. Mandarin is what is spoken in mainland China, Singapore
# and Taiwan; Cantonese in Hong Kong and Macau.
_LANGUAGE_ALIASES = {
    "zh-cn": "cmn",
    "zh-sg": "cmn",
    "zh-tw": "cmn",
    "zh-hans": "cmn",
    "zh-hant": "cmn",
    "zh-hans-cn": "cmn",
    "zh-hans-sg": "cmn",
    "zh-hant-tw": "cmn",
    "zh-hk": "yue",
    "zh-mo": "yue",
    "zh-hant-hk": "yue",
    "zh-hant-mo": "yue",
    "nb-no": "nb",
}

# Regional forms Home Assistant users pick in the UI; listed as supported when
# they resolve (to a regional voice, or to the language's main voice).
_COMMON_LOCALE_LIST = """
    ar-SA bg-BG ca-ES cs-CZ cy-GB da-DK de-AT de-CH de-DE el-GR en-AU en-CA en-GB
    en-IE en-IN en-NZ en-US en-ZA es-ES es-MX es-US et-EE eu-ES fa-IR fi-FI fr-BE
    fr-CA fr-CH fr-FR ga-IE he-IL hi-IN hr-HR hu-HU id-ID is-IS it-IT ja-JP ko-KR
    lt-LT lv-LV ms-MY nb-NO nl-BE nl-NL pl-PL pt-BR pt-PT ro-RO ru-RU sk-SK sl-SI
    sr-RS sv-SE sw-KE ta-IN th-TH tr-TR uk-UA vi-VN zh-CN zh-HK zh-Hans zh-Hant
    zh-TW
"""
_COMMON_LOCALES = tuple(_COMMON_LOCALE_LIST.split())

_LANGUAGE_CODE = re.compile(r"^[a-z]{2,8}(?:-[a-z0-9]{1,8})*$")


def normalize_language(language: str) -> str:
    """Lower-case a language code and use `-` between its parts."""
    return language.strip().replace("_", "-").lower()


def format_language(code: str) -> str:
    """Spell a language code the BCP 47 way: `en-us` becomes `en-US`."""
    parts = code.split("-")
    out = [parts[0].lower()]
    private = False
    for part in parts[1:]:
        if private or len(part) == 1:
            # After a singleton such as `x`, subtags keep their own case.
            private = True
            out.append(part.lower())
        elif len(part) == 2 and part.isalpha():  # noqa: PLR2004
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():  # noqa: PLR2004
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


class VoiceCatalog:
    """espeak's voices indexed by identifier, name and language."""

    def __init__(self, voices: Sequence[VoiceInfo]) -> None:
        """Index `voices` in espeak's order (which breaks priority ties)."""
        self.voices = tuple(voices)
        self._by_key: dict[str, VoiceInfo] = {}
        ranked: dict[str, list[tuple[int, int, int, VoiceInfo]]] = {}
        for index, voice in enumerate(self.voices):
            self._by_key.setdefault(voice.identifier.lower(), voice)
            for priority, code in voice.languages:
                entry = (priority, len(voice.identifier), index, voice)
                ranked.setdefault(code.lower(), []).append(entry)
        for voice in self.voices:
            self._by_key.setdefault(voice.name.strip().lower(), voice)
        self._by_language = {
            code: [entry[3] for entry in sorted(entries, key=lambda e: e[:3])]
            for code, entries in ranked.items()
        }

    def find_voice(self, voice: str) -> VoiceInfo:
        """Look a voice up by identifier or name, ignoring case.

        Raises:
            UnknownVoiceError: no such voice.
        """
        found = self._by_key.get(voice.strip().lower())
        if found is None:
            msg = f"Unknown voice {voice!r}"
            raise UnknownVoiceError(msg)
        return found

    def candidates(self, language: str) -> list[VoiceInfo]:
        """Voices for a language, best first.

        A regional code (`de-DE`) falls back to its language (`de`) only when
        no voice lists the region itself. Raises UnknownLanguageError when
        nothing speaks the language.
        """
        code = normalize_language(language)
        if not _LANGUAGE_CODE.match(code):
            msg = f"Invalid language code {language!r}"
            raise UnknownLanguageError(msg)
        parts = code.split("-")
        while parts:
            tag = "-".join(parts)
            tag = _LANGUAGE_ALIASES.get(tag, tag)
            if voices := self._by_language.get(tag):
                return list(voices)
            parts.pop()
        msg = f"No espeak-ng voice speaks {language!r}"
        raise UnknownLanguageError(msg)

    def resolve(self, language: str) -> VoiceInfo:
        """The best voice for a language (see `candidates`)."""
        return self.candidates(language)[0]

    def supported_languages(self) -> list[str]:
        """Language codes of espeak's voices plus common Home Assistant forms."""
        codes = {format_language(code) for code in self._by_language}
        for code in _COMMON_LOCALES:
            try:
                self.candidates(code)
            except UnknownLanguageError:
                continue
            codes.add(format_language(code))
        return sorted(codes)


# --------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------

type ChunkSink = Callable[[bytes], bool]


class SpeechBackend(Protocol):
    """What the speech thread needs from a synthesiser.

    Only the engine's thread calls these methods, one at a time.
    """

    def initialize(self) -> int:
        """Prepare the library once; return its sample rate in Hz."""
        ...

    def list_voices(self) -> list[VoiceInfo]:
        """Every voice the library has."""
        ...

    def set_voice(self, identifier: str) -> None:
        """Select a voice by its identifier."""
        ...

    def set_options(self, options: SpeechOptions) -> None:
        """Apply rate, pitch, volume and word gap."""
        ...

    def synthesize(self, text: str, sink: ChunkSink) -> None:
        """Synthesise `text`, passing s16le chunks to `sink` as they come.

        Returns when synthesis ends; `sink` returning False aborts it.
        """
        ...


type BackendLoader = Callable[[], SpeechBackend]


class EspeakBackend:
    """SpeechBackend over pyttsx3's ctypes binding of libespeak-ng."""

    def __init__(self, library: Any) -> None:
        """Wrap the binding module (`pyttsx3.drivers._espeak`)."""
        self._lib = library
        self._rate: int | None = None
        self._voice: str | None = None
        self._sink: ChunkSink | None = None
        self._error: Exception | None = None

    def initialize(self) -> int:
        """Initialise synchronous output with our callback, once."""
        if self._rate is None:
            lib = self._lib
            rate = int(lib.Initialize(lib.AUDIO_OUTPUT_SYNCHRONOUS, BUFFER_MS, None, 0))
            if rate <= 0:
                msg = f"libespeak-ng failed to initialise (error {rate})"
                raise SpeechUnavailableError(msg)
            lib.SetSynthCallback(self._callback)
            self._rate = rate
        return self._rate

    def list_voices(self) -> list[VoiceInfo]:
        """Read espeak_ListVoices(NULL), with every language of each voice."""
        lib = self._lib
        offset = lib.VOICE.languages.offset
        return [
            VoiceInfo(
                identifier=_decode(voice.identifier),
                name=_decode(voice.name).strip(),
                languages=_read_languages(voice, offset),
            )
            for voice in lib.ListVoices(None)
        ]

    def set_voice(self, identifier: str) -> None:
        """Select a voice; loading one costs up to ~20 ms, so skip repeats."""
        if identifier == self._voice:
            return
        self._voice = None
        result = int(self._lib.SetVoiceByName(identifier.encode()))
        if result != _EE_OK:
            msg = f"libespeak-ng could not load voice {identifier!r} (error {result})"
            raise SpeechEngineError(msg)
        self._voice = identifier

    def set_options(self, options: SpeechOptions) -> None:
        """Set every parameter each time: a voice change may reset them."""
        set_parameter = self._lib.SetParameter
        set_parameter(_PARAM_RATE, options.rate, 0)
        set_parameter(_PARAM_VOLUME, options.volume, 0)
        set_parameter(_PARAM_PITCH, options.pitch, 0)
        set_parameter(_PARAM_WORDGAP, options.gap, 0)

    def synthesize(self, text: str, sink: ChunkSink) -> None:
        """Run espeak_Synth; the callback streams into `sink` meanwhile."""
        lib = self._lib
        self._sink, self._error = sink, None
        try:
            result = int(lib.Synth(text.encode(), flags=lib.CHARS_UTF8 | lib.ENDPAUSE))
        finally:
            self._sink = None
        if (error := self._take_error()) is not None:
            raise error
        if result != _EE_OK:
            msg = f"espeak_Synth failed (error {result})"
            raise SpeechEngineError(msg)

    def _take_error(self) -> Exception | None:
        # Set by the callback during Synth, behind the type checker's back.
        error, self._error = self._error, None
        return error

    def _callback(self, wav: Any, numsamples: int, events: Any) -> int:
        sink = self._sink
        if sink is None:
            return _CALLBACK_ABORT
        if not wav or numsamples <= 0:
            return _CALLBACK_CONTINUE
        try:
            keep = sink(ctypes.string_at(wav, numsamples * BYTES_PER_SAMPLE))
        except Exception as err:  # noqa: BLE001 - re-raised by synthesize()
            # An exception cannot cross the C frames of espeak_Synth: keep it
            # for synthesize() and stop the synthesis.
            self._error = err
            return _CALLBACK_ABORT
        return _CALLBACK_CONTINUE if keep else _CALLBACK_ABORT


def _decode(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", errors="replace")


def _read_languages(
    voice: ctypes.Structure, offset: int
) -> tuple[tuple[int, str], ...]:
    # espeak packs (priority byte, NUL-terminated code) pairs ending in a zero
    # byte; the binding's c_char_p field stops at the first NUL, so walk the
    # raw pointer instead.
    address = ctypes.c_void_p.from_buffer(voice, offset).value
    if not address:
        return ()
    pairs: list[tuple[int, str]] = []
    position = 0
    while position < _MAX_LANGUAGE_BYTES:
        priority = ctypes.string_at(address + position, 1)[0]
        if priority == 0:
            break
        code = ctypes.string_at(address + position + 1)
        pairs.append((priority, code.decode("ascii", errors="replace").lower()))
        position += len(code) + 2
    return tuple(pairs)


_SHARED_BACKENDS: dict[str, EspeakBackend] = {}
_SHARED_LOCK = threading.Lock()


def load_espeak() -> SpeechBackend:
    """Load libespeak-ng through pyttsx3's binding; one backend per process.

    Raises:
        SpeechUnavailableError: pyttsx3 or libespeak-ng is missing.
    """
    with _SHARED_LOCK:
        backend = _SHARED_BACKENDS.get(_BINDING_MODULE)
        if backend is None:
            backend = EspeakBackend(_import_binding(_BINDING_MODULE))
            _SHARED_BACKENDS[_BINDING_MODULE] = backend
        return backend


def _import_binding(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except (ImportError, OSError, RuntimeError, AttributeError) as err:
        # The binding raises RuntimeError at import when the library is absent.
        msg = f"libespeak-ng cannot be loaded ({err}); install espeak-ng"
        raise SpeechUnavailableError(msg) from err


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


# --------------------------------------------------------------------------
# Requests to the speech thread
# --------------------------------------------------------------------------


class _Job[T]:
    """One request for the speech thread, settled in the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
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


class _CallJob[T](_Job[T]):
    """Runs a function against the backend and returns its result."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, call: Callable[[SpeechBackend], T]
    ) -> None:
        super().__init__(loop)
        self._call = call

    def execute(self, backend: SpeechBackend) -> T:
        return self._call(backend)


class _SynthJob(_Job[bool]):
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
        super().resolve(value)
        self.chunks.put_nowait(None)

    def fail(self, error: BaseException) -> None:
        super().fail(error)
        self.chunks.put_nowait(None)


class _Worker:
    """The thread that owns the library, and its request queue."""

    def __init__(
        self,
        engine: SpeechEngine,
        loop: asyncio.AbstractEventLoop,
        *,
        loader: BackendLoader,
        predecessors: Sequence[_Worker],
    ) -> None:
        self.engine = engine
        self.loop = loop
        self.jobs: queue.Queue[_Job[Any] | None] = queue.Queue()
        self._loader = loader
        self._backend: SpeechBackend | None = None
        # Abandoned threads that may still be inside the library: this one
        # must not enter it while any of them is.
        self._predecessors = tuple(predecessors)
        # The next four are shared with the loop under _STATE.
        self.current: _Job[Any] | None = None
        self.abandoned = False
        self.stuck = False
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def abandon_if_running(self, job: _Job[Any]) -> bool:
        """Mark the thread stuck if it is still on `job` (loop side)."""
        with _STATE:
            if self.current is not job:
                return False
            self.abandoned = self.stuck = True
            return True

    def take_pending(self) -> list[_Job[Any]]:
        """Remove and return the jobs not yet started (loop side)."""
        pending: list[_Job[Any]] = []
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return pending
            if job is not None:
                pending.append(job)

    def stop(self) -> _Job[Any] | None:
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

    def _execute[T](self, job: _Job[T]) -> T:
        if any(worker.stuck for worker in self._predecessors):
            raise SpeechEngineError(_STUCK_MESSAGE)
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


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------


def _noop(backend: SpeechBackend) -> None:
    """Nothing: the job itself loads and initialises the library."""


def _list_voices(backend: SpeechBackend) -> list[VoiceInfo]:
    return backend.list_voices()


class SpeechEngine:
    """Speaks text with libespeak-ng on one dedicated thread.

    The thread starts on first use and ends with `async_stop()`; the engine can
    be used again afterwards. Use one engine per process (share it between
    config entries): engines sharing the library take turns, but each has a
    thread of its own.
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
        self._worker: _Worker | None = None
        # Replaced threads that may still be inside the library.
        self._stuck: list[_Worker] = []
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
        current: _Job[Any] | None = None
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

    def _ensure_worker(self) -> _Worker:
        loop = asyncio.get_running_loop()
        worker = self._worker
        if worker is not None:
            if worker.loop is not loop:
                msg = "The speech engine is running in another event loop"
                raise SpeechEngineError(msg)
            return worker
        worker = self._worker = _Worker(
            self, loop, loader=self._loader, predecessors=list(self._stuck)
        )
        worker.start()
        return worker

    def _submit[T](self, job: _Job[T]) -> None:
        if self._unavailable is not None:
            raise SpeechUnavailableError(str(self._unavailable))
        self._stuck = [worker for worker in self._stuck if worker.stuck]
        if self._stuck:
            raise SpeechEngineError(_STUCK_MESSAGE)
        self._ensure_worker().jobs.put(job)

    async def _call[T](self, call: Callable[[SpeechBackend], T]) -> T:
        job = _CallJob(asyncio.get_running_loop(), call)
        try:
            self._submit(job)
            return await self._settle(job)
        finally:
            job.cancel()

    async def _settle[T](self, job: _Job[T]) -> T:
        try:
            return await job.future
        except SpeechUnavailableError as err:
            # Fail every later request at once, until a stop() allows a retry.
            self._unavailable = err
            raise

    # -- callbacks from the speech thread, run in the loop --------------------

    def _job_started(self, worker: _Worker, job: _Job[Any]) -> None:
        # Armed even for a job given up on: it occupies the thread all the same.
        job.timer = asyncio.get_running_loop().call_later(
            self._timeout, self._job_timed_out, worker, job
        )

    def _job_timed_out(self, worker: _Worker, job: _Job[Any]) -> None:
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

    def _worker_recovered(self, worker: _Worker) -> None:
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
        volume: int | None = None,
        gap: int | None = None,
    ) -> AsyncGenerator[bytes]:
        """Speak `text`, yielding s16le mono PCM at `sample_rate` as it comes.

        Sentences are synthesised one after another (the next while the
        current one is consumed), each streamed in ~60 ms chunks as espeak
        produces them. Leaving the iteration early (break plus `aclose()`,
        or cancelling the task) aborts the synthesis; wrap the generator in
        `contextlib.aclosing` so that happens at once.

        Args:
            text: What to say; empty or unspeakable text yields nothing.
            sample_rate: Output rate, 8000-48000 Hz.
            voice: espeak voice identifier or name; wins over `language`.
            language: Language code (`en`, `en-US`, `zh-CN`, ...); default `en`.
            rate: Words per minute, 80-450 (default 175).
            pitch: 0-100 (default 50).
            volume: 0-200 (default 100).
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
        native = self._native_chunks(sentences, chosen.identifier, options)
        async with aclosing(native) as chunks:
            async for chunk in chunks:
                if pcm := resampler.process(chunk):
                    yield pcm
                # A whole sentence may be waiting, and taking it from the queue
                # does not suspend: let the loop run between items.
                await asyncio.sleep(0)
        if tail := resampler.flush():
            yield tail

    async def _native_chunks(
        self, sentences: Sequence[str], voice: str, options: SpeechOptions
    ) -> AsyncGenerator[bytes]:
        loop = asyncio.get_running_loop()
        pending = deque(sentences)
        jobs: deque[_SynthJob] = deque()

        def submit_next() -> None:
            if pending:
                job = _SynthJob(
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
        self,
        text: str,
        *,
        sample_rate: int | None = None,
        voice: str | None = None,
        language: str | None = None,
        rate: int | None = None,
        pitch: int | None = None,
        volume: int | None = None,
        gap: int | None = None,
    ) -> bytes:
        """Speak `text` and return all of its PCM (s16le mono).

        `sample_rate` None returns espeak's native rate (`native_rate`, 22050
        Hz). Other arguments and errors as for `stream`.
        """
        if sample_rate is None:
            # Reject bad options before the library is even started.
            SpeechOptions.create(rate=rate, pitch=pitch, volume=volume, gap=gap)
            await self._get_catalog()
            sample_rate = self.native_rate
        audio = self.stream(
            text,
            sample_rate=sample_rate,
            voice=voice,
            language=language,
            rate=rate,
            pitch=pitch,
            volume=volume,
            gap=gap,
        )
        async with aclosing(audio) as chunks:
            return b"".join([chunk async for chunk in chunks])
