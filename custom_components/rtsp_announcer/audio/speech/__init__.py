"""Local speech with libespeak-ng, streamed into the event loop.

The package has one module per job: `voices` (catalogue and language codes),
`espeak` (the library binding), `worker` (the one thread that may touch the
library), `engine` (what callers use), `sentences` (text cut into sentences),
`models` (typed values) and `protocol` (`VoiceEngine`: what any voice offers,
so that the local engine and other TTS entities can stand in for each other).
Import from here; the modules are internal.
"""

from .engine import DEFAULT_STOP_TIMEOUT, DEFAULT_TIMEOUT, ENGINE_NAME, SpeechEngine
from .espeak import (
    NATIVE_RATE,
    BackendLoader,
    ChunkSink,
    EspeakBackend,
    SpeechBackend,
    load_espeak,
)
from .models import (
    DEFAULT_GAP,
    DEFAULT_PITCH,
    DEFAULT_RATE,
    DEFAULT_VOLUME,
    GAP_RANGE,
    PITCH_RANGE,
    RATE_RANGE,
    VOLUME_RANGE,
    SpeechOptions,
    SpeechStats,
    VoiceInfo,
)
from .protocol import VoiceEngine
from .sentences import MAX_SENTENCE_CHARS, split_sentences
from .voices import DEFAULT_LANGUAGE, VoiceCatalog, format_language, normalize_language
from .worker import THREAD_NAME

__all__ = [
    "DEFAULT_GAP",
    "DEFAULT_LANGUAGE",
    "DEFAULT_PITCH",
    "DEFAULT_RATE",
    "DEFAULT_STOP_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_VOLUME",
    "ENGINE_NAME",
    "GAP_RANGE",
    "MAX_SENTENCE_CHARS",
    "NATIVE_RATE",
    "PITCH_RANGE",
    "RATE_RANGE",
    "THREAD_NAME",
    "VOLUME_RANGE",
    "BackendLoader",
    "ChunkSink",
    "EspeakBackend",
    "SpeechBackend",
    "SpeechEngine",
    "SpeechOptions",
    "SpeechStats",
    "VoiceCatalog",
    "VoiceEngine",
    "VoiceInfo",
    "format_language",
    "load_espeak",
    "normalize_language",
    "split_sentences",
]
