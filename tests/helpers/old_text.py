"""Text normalisation and sentence splitting as they were before they were made linear.

tests/audio/test_text_linear.py checks that the linear code gives the same output;
benchmarks/text.py times both.
"""

from __future__ import annotations

import re

from custom_components.rtsp_announcer.audio import text as text_module
from custom_components.rtsp_announcer.audio.speech import sentences as sentences_module


def _old_unit_pattern(units: list[str]) -> re.Pattern[str]:
    ordered = sorted(units, key=len, reverse=True)
    alternatives = "|".join(re.escape(unit) for unit in ordered)
    return re.compile(rf"(?P<num>\d+(?:[.,]\d+)?)\s?(?P<unit>{alternatives})(?![\w/])")


_OLD_EN = _old_unit_pattern(list(text_module._UNITS_EN))
_OLD_ZH = _old_unit_pattern(list(text_module._UNITS_ZH))
_OLD_ZH_PERCENT = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s?%")


def old_normalize_text(text: str, language: str | None) -> str:
    """`normalize_text` with the old patterns (same expansions)."""
    base = (language or "en").replace("_", "-").split("-")[0].lower()
    if base in {"zh", "cmn", "yue"}:
        text = _OLD_ZH_PERCENT.sub(lambda m: f"百分之{m['num']}", text)
        return _OLD_ZH.sub(text_module._expand_zh, text)
    if base == "en":
        return _OLD_EN.sub(text_module._expand_en, text)
    return text


_END = sentences_module._WESTERN_END
_CJK = sentences_module._CJK_END
_CLOSERS = sentences_module._CLOSERS
_OLD_BOUNDARY = re.compile(
    rf"(?:(?<={_END})|(?<={_END}{_CLOSERS}))\s+"
    rf"|(?:(?<={_CJK})|(?<={_CJK}{_CLOSERS}))(?!{_CLOSERS})\s*"
    r"|\s*\n\s*"
)


def old_split_sentences(text: str, *, max_chars: int = 400) -> list[str]:
    """`split_sentences` as it was: a line break looked for from every space,
    abbreviations joined one by one, long pieces cut by copying the rest."""
    ends_with_abbreviation = sentences_module._ends_with_abbreviation
    text = text.replace("\x00", " ")
    pieces: list[str] = []
    carry = ""
    for raw in _OLD_BOUNDARY.split(text):
        piece = f"{carry} {raw}".strip() if carry else raw.strip()
        carry = ""
        if not piece:
            continue
        if ends_with_abbreviation(piece):
            carry = piece
            continue
        pieces.append(piece)
    if carry:
        pieces.append(carry)
    sentences: list[str] = []
    for piece in pieces:
        rest = piece
        while len(rest) > max_chars:
            cut = max_chars
            soft = sentences_module._SOFT_BREAK
            for match in soft.finditer(rest, max_chars // 2, max_chars):
                cut = match.end()
            head, rest = rest[:cut].strip(), rest[cut:].strip()
            if head:
                sentences.append(head)
        if rest:
            sentences.append(rest)
    return [s for s in sentences if sentences_module._SPEAKABLE.search(s)]
