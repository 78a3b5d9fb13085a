"""What any voice offers the announcer: text in, a stream of PCM out.

The local espeak-ng engine is one voice; another Home Assistant TTS entity,
adapted in the Home Assistant layer, is another. A fallback treats them alike.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol


class VoiceEngine(Protocol):
    """A voice that speaks text as s16le mono PCM, streamed as it is made."""

    @property
    def name(self) -> str:
        """Short name for logs and diagnostics, e.g. `espeak-ng`."""
        ...

    def stream(
        self,
        text: str,
        *,
        sample_rate: int,
        language: str | None = None,
        voice: str | None = None,
    ) -> AsyncGenerator[bytes]:
        """Speak `text`, yielding s16le mono PCM at `sample_rate` as it comes.

        The audio starts with the voice, not with silence: an engine trims its
        own leading silence (`pcm.LeadingSilenceTrimmer`).

        An async generator rather than any async iterator: it has `aclose()`,
        which stops the synthesis at once when the caller gives up early (wrap
        it in `contextlib.aclosing`).

        Args:
            text: What to say; unspeakable text yields nothing.
            sample_rate: Output rate in Hz.
            language: Language code (`en`, `en-US`, `zh-CN`, ...); None is the
                voice's default.
            voice: A voice of this engine, by identifier or name; wins over
                `language`.

        Raises:
            InvalidOptionError: at once, for a bad sample rate.
            AnnouncerError: from the iteration, when the voice cannot speak.
        """
        ...
