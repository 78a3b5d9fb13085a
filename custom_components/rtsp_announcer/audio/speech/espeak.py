"""libespeak-ng through pyttsx3's ctypes binding, behind a small backend protocol.

Only the speech thread (see `worker`) may call into a backend. Do not create a
pyttsx3 `Engine` in the same process: it re-initialises the library in another
output mode and replaces the synth callback.
"""

from __future__ import annotations

import ctypes
import importlib
import threading
from collections.abc import Callable
from typing import Any, Protocol

from custom_components.rtsp_announcer.audio.exceptions import (
    SpeechEngineError,
    SpeechUnavailableError,
)
from custom_components.rtsp_announcer.audio.models import BYTES_PER_SAMPLE

from .models import ESPEAK_UNITY_VOLUME, SpeechOptions, VoiceInfo

# espeak-ng synthesises at 22050 Hz whatever the voice; confirmed at start-up.
NATIVE_RATE = 22050
# Audio per callback: the first chunk of any text is ready within about a
# millisecond, and its ~60 ms is more than the stream needs to start playing.
BUFFER_MS = 60

_BINDING_MODULE = "pyttsx3.drivers._espeak"
# Parameter numbers from espeak-ng's speak_lib.h; pyttsx3 names 7 after the
# older espeak, where it was internal.
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_WORDGAP = 7
_EE_OK = 0
_CALLBACK_CONTINUE = 0
_CALLBACK_ABORT = 1
# Bounds when walking the raw language list of a voice, in case it is corrupt.
_MAX_LANGUAGE_BYTES = 1024


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
        # The volume option is applied to the PCM (see ESPEAK_UNITY_VOLUME).
        set_parameter(_PARAM_VOLUME, ESPEAK_UNITY_VOLUME, 0)
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
