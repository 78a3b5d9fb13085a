"""Text clean-up, units and sentence splitting: any input, same output, linear time."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.rtsp_announcer.audio import text as text_module
from custom_components.rtsp_announcer.audio.speech import split_sentences
from custom_components.rtsp_announcer.audio.text import clean_text, normalize_text
from tests.helpers.old_text import old_normalize_text, old_split_sentences

LENGTH = 100_000
# Generous: a bound that catches quadratic time, not a benchmark (~30 ms here).
LIMIT = 1.0
LANGUAGES = ("en", "en-GB", "zh", "zh-CN", "yue", "de", None)

# -- inputs -------------------------------------------------------------------------

UNITS = sorted({*text_module._UNITS_EN, *text_module._UNITS_ZH})
FRAGMENTS = [
    *UNITS,
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "\u3000",
    ".",
    ",",
    ". ",
    "!",
    "?",
    "…",
    ";",
    ":",
    "/",
    "%",
    "°",
    '"',
    "'",
    ")",
    "」",
    "』",
    "）",
    "»",
    "”",
    "。",
    "！",
    "？",
    "；",
    "，",
    "、",
    "：",
    "Dr.",
    "J.",
    "e.g.",
    "km/hx",
    "Wind",
    "the",
    "kms",
    "温度",
    "厨房",
    "湿度",
    "Zähler",
    "عربى",
    "١٢",
    "１２",
    "ok",
]
numbers = st.builds(
    lambda whole, point, fraction: f"{whole}{point}{fraction}",
    st.integers(0, 10**12).map(str),
    st.sampled_from(["", ".", ","]),
    st.sampled_from(["", "0", "5", "25", "1000"]),
)
# Text as announcements are written: words, numbers, units, punctuation.
ordinary = st.lists(st.one_of(st.sampled_from(FRAGMENTS), numbers), max_size=60).map(
    "".join
)
# Anything: control characters, lone surrogates, every script.
hostile_chars = st.characters(exclude_categories=())
hostile = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        numbers,
        hostile_chars,
        st.text(hostile_chars, max_size=8),
        st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x85", "\ud800", "\udfff"]),
    ),
    max_size=80,
).map("".join)


def speakable(text: str) -> bool:
    """No control character but tab and line feed, no surrogate; encodable."""
    for char in text:
        category = unicodedata.category(char)
        if category == "Cs" or (category == "Cc" and char not in "\t\n"):
            return False
    text.encode("utf-8")
    return True


def repeat_to(fragment: str, length: int = LENGTH) -> str:
    return (fragment * (length // max(len(fragment), 1) + 1))[:length]


# -- same output as before -------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(text=ordinary, language=st.sampled_from(LANGUAGES))
def test_normalize_unchanged(text: str, language: str | None) -> None:
    assert normalize_text(text, language) == old_normalize_text(text, language)


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(ordinary, hostile), max_chars=st.sampled_from([12, 40, 400]))
def test_split_unchanged(text: str, max_chars: int) -> None:
    assert split_sentences(text, max_chars=max_chars) == old_split_sentences(
        text, max_chars=max_chars
    )


def test_split_examples_unchanged() -> None:
    for text in [
        "Dr. J. Smith arrived. He said: hello!\n\nNext line",
        "A. B. C. D.",
        "温度21.5°C。湿度50%！「好。」下一句",
        "a" * 1000 + " b, c: d " * 100,
        "one  \n  two \t\n three   four.  five",
    ]:
        assert split_sentences(text) == old_split_sentences(text)


# -- any input ---------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(text=hostile, language=st.sampled_from(LANGUAGES))
def test_hostile_text_is_made_speakable(text: str, language: str | None) -> None:
    spoken = normalize_text(clean_text(text), language)
    assert speakable(spoken)
    for sentence in split_sentences(spoken):
        assert speakable(sentence)
        assert sentence == sentence.strip()
        assert len(sentence) <= 400


# -- in linear time ------------------------------------------------------------------


def elapsed(text: str, language: str | None) -> float:
    start = time.perf_counter()
    spoken = normalize_text(clean_text(text), language)
    split_sentences(spoken)
    return time.perf_counter() - start


@pytest.mark.parametrize(
    "fragment",
    [
        "1",
        "12.",
        "1,",
        "5km/h ",
        "5 kWh",
        "42%",
        "a",
        ",;:!?",
        ".",
        ". ",
        " ",
        "\n ",
        "A. ",
        "Dr. ",
        "请打开厨房的灯",
        "温度21.5°C，湿度50%",
        "\x00\x07\ud800",
    ],
)
@pytest.mark.parametrize("language", ["en", "zh"])
def test_long_hostile_input_in_linear_time(fragment: str, language: str) -> None:
    assert elapsed(repeat_to(fragment), language) < LIMIT


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(fragment=hostile.filter(bool), language=st.sampled_from(LANGUAGES))
def test_any_long_input_in_linear_time(fragment: str, language: str | None) -> None:
    text = repeat_to(fragment)
    assert elapsed(text, language) < LIMIT
    assert speakable(normalize_text(clean_text(text), language))
