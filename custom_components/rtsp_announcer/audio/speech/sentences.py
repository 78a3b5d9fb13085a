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
# Every alternative takes the whole run of whitespace it starts in. A line
# break is only looked for from the start of a run (`(?<!\s)`): tried from
# every space of a long run without one, it would make splitting quadratic.
_BOUNDARY = re.compile(
    rf"(?:(?<={_WESTERN_END})|(?<={_WESTERN_END}{_CLOSERS}))\s+"
    rf"|(?:(?<={_CJK_END})|(?<={_CJK_END}{_CLOSERS}))(?!{_CLOSERS})\s*"
    r"|(?<!\s)[^\S\n]*\n\s*"
)
# Commas and colons (also the ideographic and full-width ones), or a space.
_SOFT_BREAK = re.compile(r"[,;:\u3001\uff0c\uff1a]\s*|\s+")
_SPEAKABLE = re.compile(r"\w")
_NOT_SPACE = re.compile(r"\S")
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
    # Pieces ending in an abbreviation, joined to the next one: gathered in a
    # list, as joining them one by one is quadratic for "A. B. C. ...".
    carry: list[str] = []
    for raw in _BOUNDARY.split(text):
        if not (piece := raw.strip()):
            continue
        carry.append(piece)
        # The joined piece ends as this one does.
        if not _ends_with_abbreviation(piece):
            pieces.append(" ".join(carry))
            carry.clear()
    if carry:
        pieces.append(" ".join(carry))
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
    # `piece` is stripped. Walks it by index: cutting off the head again and
    # again would copy the rest each time, quadratic in one long word.
    parts: list[str] = []
    start = 0
    while len(piece) - start > max_chars:
        cut = start + max_chars
        for match in _SOFT_BREAK.finditer(piece, start + max_chars // 2, cut):
            cut = match.end()
        if head := piece[start:cut].strip():
            parts.append(head)
        following = _NOT_SPACE.search(piece, cut)
        start = following.start() if following else len(piece)
    if start < len(piece):
        parts.append(piece[start:])
    return parts
