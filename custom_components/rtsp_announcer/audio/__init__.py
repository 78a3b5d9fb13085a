"""The audio core: clock, PCM transports, the ffmpeg publisher and playback.

Nothing in this package imports Home Assistant, so it can be used and tested alone.
The names below are its public surface: the Home Assistant layer imports only
these, from here.
"""

from __future__ import annotations

from . import options
from .breaker import CircuitBreaker
from .cache import PcmCache
from .decoder import DEFAULT_LIMITS, DecodeLimits, decode_to
from .exceptions import (
    AnnouncerError,
    DecodeError,
    InvalidOptionError,
    InvalidUrlError,
    QueueFullError,
    SpeechEngineError,
    UnknownLanguageError,
    UnknownVoiceError,
)
from .ffmpeg import binary_runs
from .gain import db_to_gain, volume_to_gain
from .models import (
    BYTES_PER_SAMPLE,
    PublisherState,
    StreamSettings,
)
from .options import Codec, PcmTransport, RtspTransport
from .pcm import LeadingSilenceTrimmer
from .playback import (
    PRIORITY_CRITICAL,
    PRIORITY_HIGH,
    PRIORITY_NORMAL,
    ItemState,
    PlaybackItem,
)
from .probe import ProbeResult, probe_publish
from .publisher import FailureKind, Publisher, Supervision
from .speech import (
    DEFAULT_LANGUAGE,
    SpeechEngine,
    SpeechOptions,
    VoiceInfo,
    split_sentences,
)
from .speech.protocol import VoiceEngine
from .stream import AudioStream
from .tasks import cancel_and_wait
from .text import clean_text, normalize_text
from .url import parse_rtsp_url, redact_text, redact_url, strip_credentials

__all__ = [
    "BYTES_PER_SAMPLE",
    "DEFAULT_LANGUAGE",
    "DEFAULT_LIMITS",
    "PRIORITY_CRITICAL",
    "PRIORITY_HIGH",
    "PRIORITY_NORMAL",
    "AnnouncerError",
    "AudioStream",
    "CircuitBreaker",
    "Codec",
    "DecodeError",
    "DecodeLimits",
    "FailureKind",
    "InvalidOptionError",
    "InvalidUrlError",
    "ItemState",
    "LeadingSilenceTrimmer",
    "PcmCache",
    "PcmTransport",
    "PlaybackItem",
    "ProbeResult",
    "Publisher",
    "PublisherState",
    "QueueFullError",
    "RtspTransport",
    "SpeechEngine",
    "SpeechEngineError",
    "SpeechOptions",
    "StreamSettings",
    "Supervision",
    "UnknownLanguageError",
    "UnknownVoiceError",
    "VoiceEngine",
    "VoiceInfo",
    "binary_runs",
    "cancel_and_wait",
    "clean_text",
    "db_to_gain",
    "decode_to",
    "normalize_text",
    "options",
    "parse_rtsp_url",
    "probe_publish",
    "redact_text",
    "redact_url",
    "split_sentences",
    "strip_credentials",
    "volume_to_gain",
]
