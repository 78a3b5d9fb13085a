"""espeak-ng's voices, and Home Assistant's language codes mapped onto them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from custom_components.rtsp_announcer.audio.exceptions import (
    UnknownLanguageError,
    UnknownVoiceError,
)

from .models import VoiceInfo

DEFAULT_LANGUAGE = "en"

# Home Assistant's codes for Chinese name a script or a region; espeak names
# the spoken language. Mandarin is what is spoken in mainland China, Singapore
# and Taiwan; Cantonese in Hong Kong and Macau.
_LANGUAGE_ALIASES = {
    "zh-cn": "cmn",
    "zh-sg": "cmn",
    "zh-tw": "cmn",
    "zh-hans": "cmn",
    "zh-hant": "cmn",
    "zh-hans-cn": "cmn",
    "zh-hans-sg": "cmn",
    "zh-hant-tw": "cmn",
    "zh-hk": "yue",
    "zh-mo": "yue",
    "zh-hant-hk": "yue",
    "zh-hant-mo": "yue",
    "nb-no": "nb",
}

# Regional forms Home Assistant users pick in the UI; listed as supported when
# they resolve (to a regional voice, or to the language's main voice).
_COMMON_LOCALE_LIST = """
    ar-SA bg-BG ca-ES cs-CZ cy-GB da-DK de-AT de-CH de-DE el-GR en-AU en-CA en-GB
    en-IE en-IN en-NZ en-US en-ZA es-ES es-MX es-US et-EE eu-ES fa-IR fi-FI fr-BE
    fr-CA fr-CH fr-FR ga-IE he-IL hi-IN hr-HR hu-HU id-ID is-IS it-IT ja-JP ko-KR
    lt-LT lv-LV ms-MY nb-NO nl-BE nl-NL pl-PL pt-BR pt-PT ro-RO ru-RU sk-SK sl-SI
    sr-RS sv-SE sw-KE ta-IN th-TH tr-TR uk-UA vi-VN zh-CN zh-HK zh-Hans zh-Hant
    zh-TW
"""
_COMMON_LOCALES = tuple(_COMMON_LOCALE_LIST.split())

_LANGUAGE_CODE = re.compile(r"^[a-z]{2,8}(?:-[a-z0-9]{1,8})*$")


def normalize_language(language: str) -> str:
    """Lower-case a language code and use `-` between its parts."""
    return language.strip().replace("_", "-").lower()


def format_language(code: str) -> str:
    """Spell a language code the BCP 47 way: `en-us` becomes `en-US`."""
    parts = code.split("-")
    out = [parts[0].lower()]
    private = False
    for part in parts[1:]:
        if private or len(part) == 1:
            # After a singleton such as `x`, subtags keep their own case.
            private = True
            out.append(part.lower())
        elif len(part) == 2 and part.isalpha():  # noqa: PLR2004
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():  # noqa: PLR2004
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


class VoiceCatalog:
    """espeak's voices indexed by identifier, name and language."""

    def __init__(self, voices: Sequence[VoiceInfo]) -> None:
        """Index `voices` in espeak's order (which breaks priority ties)."""
        self.voices = tuple(voices)
        self._by_key: dict[str, VoiceInfo] = {}
        ranked: dict[str, list[tuple[int, int, int, VoiceInfo]]] = {}
        for index, voice in enumerate(self.voices):
            self._by_key.setdefault(voice.identifier.lower(), voice)
            for priority, code in voice.languages:
                entry = (priority, len(voice.identifier), index, voice)
                ranked.setdefault(code.lower(), []).append(entry)
        for voice in self.voices:
            self._by_key.setdefault(voice.name.strip().lower(), voice)
        self._by_language = {
            code: [entry[3] for entry in sorted(entries, key=lambda e: e[:3])]
            for code, entries in ranked.items()
        }

    def find_voice(self, voice: str) -> VoiceInfo:
        """Look a voice up by identifier or name, ignoring case.

        Raises:
            UnknownVoiceError: no such voice.
        """
        found = self._by_key.get(voice.strip().lower())
        if found is None:
            msg = f"Unknown voice {voice!r}"
            raise UnknownVoiceError(msg)
        return found

    def candidates(self, language: str) -> list[VoiceInfo]:
        """Voices for a language, best first.

        A regional code (`de-DE`) falls back to its language (`de`) only when
        no voice lists the region itself. Raises UnknownLanguageError when
        nothing speaks the language.
        """
        code = normalize_language(language)
        if not _LANGUAGE_CODE.match(code):
            msg = f"Invalid language code {language!r}"
            raise UnknownLanguageError(msg)
        parts = code.split("-")
        while parts:
            tag = "-".join(parts)
            tag = _LANGUAGE_ALIASES.get(tag, tag)
            if voices := self._by_language.get(tag):
                return list(voices)
            parts.pop()
        msg = f"No espeak-ng voice speaks {language!r}"
        raise UnknownLanguageError(msg)

    def resolve(self, language: str) -> VoiceInfo:
        """The best voice for a language (see `candidates`)."""
        return self.candidates(language)[0]

    def supported_languages(self) -> list[str]:
        """Language codes of espeak's voices plus common Home Assistant forms."""
        codes = {format_language(code) for code in self._by_language}
        for code in _COMMON_LOCALES:
            try:
                self.candidates(code)
            except UnknownLanguageError:
                continue
            codes.add(format_language(code))
        return sorted(codes)
