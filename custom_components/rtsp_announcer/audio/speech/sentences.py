"""Cutting text into sentences, the unit espeak-ng synthesises at a time."""

from __future__ import annotations

import re

MAX_SENTENCE_CHARS = 400

_WESTERN_END = r"[.!?\u2026]"
# Ideographic full stop and the full-width exclamation, question mark and
# semicolon, which need no space after them.
_CJK_END = r"[\u3002\uff01\uff1f\uff1b]"
# Closing quotes and brackets that may follow an end mark, Western and CJK.
_CLOSERS = r"[\"'\u201d\u2019\u00bb)\]\u300d\u300f\uff09]"
_BOUNDARY = re.compile(
    rf"(?:(?<={_WESTERN_END})|(?<={_WESTERN_END}{_CLOSERS}))\s+"
    rf"|(?:(?<={_CJK_END})|(?<={_CJK_END}{_CLOSERS}))(?!{_CLOSERS})\s*"
    r"|\s*\n\s*"
)
# Commas and colons (also the ideographic and full-width ones), or a space.
_SOFT_BREAK = re.compile(r"[,;:\u3001\uff0c\uff1a]\s*|\s+")
_SPEAKABLE = re.compile(r"\w")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "e.g", "i.e", "approx"}
)


def split_sentences(text: str, *, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split text into sentences to synthesise one by one.

    Boundaries are `.`, `!`, `?` and `…` followed by whitespace (so `3.5`
    stays whole), the Chinese full stop and full-width `!`, `?` and `;` with
    or without following space, and line breaks. Common abbreviations and
    initials (`Dr.`, `J.`) do not end a sentence. A sentence longer than
    `max_chars` is cut at a comma or space, which bounds the audio one piece
    holds in memory. Pieces without a letter or digit are dropped: they
    would only be silence.
    """
    text = text.replace("\x00", " ")
    pieces: list[str] = []
    carry = ""
    for raw in _BOUNDARY.split(text):
        piece = f"{carry} {raw}".strip() if carry else raw.strip()
        carry = ""
        if not piece:
            continue
        if _ends_with_abbreviation(piece):
            carry = piece
            continue
        pieces.append(piece)
    if carry:
        pieces.append(carry)
    sentences: list[str] = []
    for piece in pieces:
        sentences.extend(_wrap(piece, max_chars))
    return [sentence for sentence in sentences if _SPEAKABLE.search(sentence)]


def _ends_with_abbreviation(piece: str) -> bool:
    if not piece.endswith("."):
        return False
    word = piece.rsplit(maxsplit=1)[-1].rstrip(".").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _wrap(piece: str, max_chars: int) -> list[str]:
    parts: list[str] = []
    while len(piece) > max_chars:
        cut = max_chars
        for match in _SOFT_BREAK.finditer(piece, max_chars // 2, max_chars):
            cut = match.end()
        head, piece = piece[:cut].strip(), piece[cut:].strip()
        if head:
            parts.append(head)
    if piece:
        parts.append(piece)
    return parts
