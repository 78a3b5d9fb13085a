"""Typed values of the speech engine: voices, prosody options and statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from custom_components.rtsp_announcer.audio.exceptions import InvalidOptionError
from custom_components.rtsp_announcer.audio.gain import volume_to_gain

# espeak's own default (pyttsx3 uses 200): announcements reach people through
# loudspeakers and lossy codecs, where slightly slower speech is clearer.
DEFAULT_RATE = 175
DEFAULT_PITCH = 50
# The one volume scale of the integration (see `audio.gain`): 0..1, amplitude
# gain = volume squared. espeak always speaks at its own normal volume (100 on
# its 0-200 scale) and the engine scales the PCM: espeak's amplitude moves in
# coarse integer steps (measured: its 25 and 6 give -12.97 and -26.68 dB
# instead of -12.04 and -24.08), our gain is exact.
DEFAULT_VOLUME = 1.0
DEFAULT_GAP = 0
RATE_RANGE = (80, 450)
PITCH_RANGE = (0, 100)
VOLUME_RANGE = (0.0, 1.0)
# espeak's volume parameter for its normal level, where its output is unscaled.
ESPEAK_UNITY_VOLUME = 100
GAP_RANGE = (0, 100)


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
        volume: 0-1 on the integration's volume scale (amplitude gain =
            volume squared; 1 is the voice's normal level, 0.5 is -12 dB).
        gap: Extra pause between words, in units of 10 ms, 0-100.
    """

    rate: int = DEFAULT_RATE
    pitch: int = DEFAULT_PITCH
    volume: float = DEFAULT_VOLUME
    gap: int = DEFAULT_GAP

    @property
    def gain(self) -> float:
        """The linear amplitude gain the volume means."""
        return volume_to_gain(self.volume)

    @classmethod
    def create(
        cls,
        *,
        rate: int | None = None,
        pitch: int | None = None,
        volume: float | None = None,
        gap: int | None = None,
    ) -> SpeechOptions:
        """Validate options; None keeps the default.

        Raises:
            InvalidOptionError: a value is not an integer or out of range.
        """
        return cls(
            rate=_checked("rate", rate, DEFAULT_RATE, RATE_RANGE),
            pitch=_checked("pitch", pitch, DEFAULT_PITCH, PITCH_RANGE),
            volume=_checked_volume(volume),
            gap=_checked("gap", gap, DEFAULT_GAP, GAP_RANGE),
        )

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> SpeechOptions:
        """`create` from the `rate`, `pitch`, `volume` and `gap` keys of `options`.

        Other keys are ignored; a missing key keeps the default.

        Raises:
            InvalidOptionError: a value is not an integer or out of range.
        """
        return cls.create(
            rate=options.get("rate"),
            pitch=options.get("pitch"),
            volume=options.get("volume"),
            gap=options.get("gap"),
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


def _checked_volume(value: object) -> float:
    if value is None:
        return DEFAULT_VOLUME
    low, high = VOLUME_RANGE
    # An int is fine (1 is full volume); bool is not a volume.
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"volume must be a number from {low:g} to {high:g}, got {value!r}"
        raise InvalidOptionError(msg)
    # NaN fails this comparison too.
    if not low <= value <= high:
        msg = f"volume must be from {low:g} to {high:g}, got {value}"
        raise InvalidOptionError(msg)
    return float(value)


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
