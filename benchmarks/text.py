"""Time text normalisation and sentence splitting on long and hostile input.

    .venv/bin/python -m benchmarks.text [--chars 100000] [--full]

Each input is `--chars` characters long. Printed: `normalize_text` with the
unit patterns as they were (`\\d+(?:[.,]\\d+)?`, tried from every digit and
backtracking: quadratic in a run of digits) and as they are now, and the ratio;
then `split_sentences` as it was and as it is. Where the old code would take
more than a few seconds, it is timed on 10 000 characters and its time for
`--chars` extrapolated as quadratic (marked `~`); `--full` times it for real.
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable

from custom_components.rtsp_announcer.audio.speech import split_sentences
from custom_components.rtsp_announcer.audio.text import normalize_text
from tests.helpers.old_text import old_normalize_text, old_split_sentences

REPEATS = 5
# The old code is timed on PROBE_CHARS first; where it might take longer than
# WAIT_LIMIT seconds on the whole input, its time is extrapolated instead.
PROBE_CHARS = 5000
WAIT_LIMIT = 3.0

# -- inputs ---------------------------------------------------------------------


def _repeat(unit: str, chars: int) -> str:
    return (unit * (chars // len(unit) + 1))[:chars]


INPUTS: dict[str, tuple[Callable[[int], str], str]] = {
    "digits (en)": (lambda n: "1" * n, "en"),
    "digits (zh)": (lambda n: "1" * n, "zh"),
    "units": (lambda n: _repeat("5km/h ", n), "en"),
    "mixed": (
        lambda n: _repeat(
            "Wind 42 km/h, 21.5 °C at 7:30; Dr. J. Smith carried 3 kg for 5min. "
            "Zähler 1.234,5 kWh! 温度21.5°C。\n",
            n,
        ),
        "en",
    ),
    "CJK": (lambda n: _repeat("请打开厨房的灯温度二十一度湿度百分之五十", n), "zh"),
    "CJK + units": (lambda n: _repeat("温度21.5°C，湿度50%，风速12km/h。", n), "zh"),
    "spaces": (lambda n: " " * n, "en"),
    "initials": (lambda n: _repeat("A. ", n), "en"),
    "one word": (lambda n: "a" * n, "en"),
}


def best_time(call: Callable[[], object], repeats: int = REPEATS) -> float:
    """Fastest of `repeats` runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def old_time(
    run: Callable[[str], object], make: Callable[[int], str], chars: int, *, full: bool
) -> tuple[float, float | None]:
    """Time `run` on `chars` characters, or extrapolate when that would be slow.

    The old code is quadratic where it is slow, so its time on `chars` is
    extrapolated as such from 2 * PROBE_CHARS. Returns the time and, when it
    was extrapolated, the growth measured between the two probes (n^2 when
    quadratic; a loaded machine blurs it).
    """
    if not full and chars > 2 * PROBE_CHARS:
        small = best_time(functools.partial(run, make(PROBE_CHARS)))
        if small * (chars / PROBE_CHARS) ** 2 > WAIT_LIMIT:
            larger = 2 * PROBE_CHARS
            big = best_time(functools.partial(run, make(larger)), repeats=1)
            exponent = math.log(big / small) / math.log(larger / PROBE_CHARS)
            return big * (chars / larger) ** 2, exponent
    return best_time(functools.partial(run, make(chars))), None


def ms(seconds: float, exponent: float | None = None) -> str:
    """Milliseconds for the table; `~` marks an extrapolation."""
    return f"{' ' if exponent is None else '~'}{seconds * 1000:10.1f}"


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="never extrapolate")
    args = parser.parse_args()
    chars: int = args.chars

    print(f"{chars} characters each; best of {REPEATS}; times in ms")
    print(
        f"{'input':<14}{'normalize old':>15}{'new':>12}{'ratio':>10}"
        f"{'split old':>14}{'new':>12}{'ratio':>10}"
    )
    notes: list[str] = []
    for name, (make, language) in INPUTS.items():
        text = make(chars)
        sample = text[:2000]
        assert normalize_text(sample, language) == old_normalize_text(sample, language)
        assert split_sentences(sample) == old_split_sentences(sample)

        old = functools.partial(old_normalize_text, language=language)
        old_norm, norm_guess = old_time(old, make, chars, full=args.full)
        new_norm = best_time(functools.partial(normalize_text, text, language))
        old_split, split_guess = old_time(
            old_split_sentences, make, chars, full=args.full
        )
        new_split = best_time(functools.partial(split_sentences, text))
        print(
            f"{name:<14}{ms(old_norm, norm_guess):>15}{ms(new_norm):>12}"
            f"{old_norm / new_norm:>9.0f}x"
            f"{ms(old_split, split_guess):>14}{ms(new_split):>12}"
            f"{old_split / new_split:>9.0f}x"
        )
        for what, exponent in (("normalize", norm_guess), ("split", split_guess)):
            if exponent is not None:
                notes.append(
                    f"~ {name}, old {what}: quadratic from {2 * PROBE_CHARS} "
                    f"characters (growth measured from {PROBE_CHARS}: "
                    f"n^{exponent:.1f})"
                )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
