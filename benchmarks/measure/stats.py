"""Figures from repeated measurements: percentiles, series, real-time factors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: always one of the measured values."""
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass
class Series:
    """Milliseconds per run, and how many runs gave no figure."""

    values: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def p50(self) -> float:
        return percentile(self.values, 50) if self.values else math.nan

    @property
    def p95(self) -> float:
        return percentile(self.values, 95) if self.values else math.nan

    def record(self, value: float | None) -> None:
        """Add a figure; None counts as a run without one."""
        if value is None:
            self.failures += 1
        else:
            self.values.append(value)

    def row(self) -> str:
        failed = f"  ({self.failures} without a figure)" if self.failures else ""
        if not self.values:
            return f"{'-':>8} {'-':>8} {'-':>8} {'-':>8} {0:>4}{failed}"
        return (
            f"{self.p50:8.1f} {self.p95:8.1f} {min(self.values):8.1f} "
            f"{max(self.values):8.1f} {len(self.values):4d}{failed}"
        )

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "failures": self.failures}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Series:
        return cls(
            values=[float(v) for v in data["values"]], failures=int(data["failures"])
        )


class Rtf(NamedTuple):
    """A real-time factor from the median synthesis time, and from the best."""

    median: float
    best: float

    def __str__(self) -> str:
        return f"{self.median:5.0f}x ({self.best:.0f}x)"


def real_time_factor(audio_s: float, seconds: Sequence[float]) -> Rtf:
    return Rtf(audio_s / percentile(seconds, 50), audio_s / min(seconds))


HEADER = f"{'p50 ms':>8} {'p95 ms':>8} {'min':>8} {'max':>8} {'n':>4}"


def ratio(naive: Series, ours: Series) -> str:
    if not naive.values or not ours.values:
        return "-"
    return f"{naive.p50 / ours.p50:6.1f}x (p50)  {naive.p95 / ours.p95:6.1f}x (p95)"
