"""Errors raised by the audio core."""

from __future__ import annotations


class AnnouncerError(Exception):
    """Base class of every error the audio core raises."""


class InvalidUrlError(AnnouncerError):
    """The RTSP URL cannot be used (scheme, host or port)."""


class FfmpegNotFoundError(AnnouncerError):
    """The ffmpeg binary is missing or cannot be started."""


class TransportError(AnnouncerError):
    """The PCM transport to ffmpeg could not be set up."""


class QueueFullError(AnnouncerError):
    """The stream's playback queue is at its limit."""


class DecodeError(AnnouncerError):
    """A media item could not be decoded into PCM."""


class StreamStoppedError(AnnouncerError):
    """The stream was stopped before the item could be played."""


class InvalidOptionError(AnnouncerError, ValueError):
    """A speech or audio option is out of range or of the wrong type."""


class SpeechEngineError(AnnouncerError):
    """The speech engine failed, timed out or was stopped during a request."""


class SpeechUnavailableError(SpeechEngineError):
    """libespeak-ng cannot be loaded or initialised on this system."""


class UnknownLanguageError(AnnouncerError):
    """No installed espeak-ng voice speaks the requested language."""


class UnknownVoiceError(AnnouncerError):
    """The requested voice is not among espeak-ng's voices."""


class AudioTooLongError(AnnouncerError):
    """An announcement gave more audio than its limit allows: the rest is cut."""


class SourceTimeoutError(DecodeError):
    """A media source sent no audio in time, fell behind its audio or ran too long."""


class MediaUnreadableError(DecodeError):
    """A remote media source could not be read, whatever the reason.

    The message is always the same: telling a refused connection from a timeout, a
    404 or an unknown host would tell a caller which hosts and ports answer. The
    decoder logs the reason, redacted, at debug level.
    """

    def __init__(self) -> None:
        """Create the error; its message never depends on the cause."""
        super().__init__("the media could not be read")
