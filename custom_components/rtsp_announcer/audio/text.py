"""Make announcement text read naturally where espeak-ng does not already.

espeak-ng reads plain numbers, decimals, times and "%" well in English, but
spells unit abbreviations letter by letter ("km/h" -> "kay em slash aitch").
Units and temperatures are expanded here; everything else is left to espeak.
"""

from __future__ import annotations

import re

# Longest first, so "km/h" wins over "km" and "m".
_UNITS_EN: dict[str, tuple[str, str]] = {
    "km/h": ("kilometre per hour", "kilometres per hour"),
    "m/s": ("metre per second", "metres per second"),
    "mph": ("mile per hour", "miles per hour"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "km": ("kilometre", "kilometres"),
    "cm": ("centimetre", "centimetres"),
    "mm": ("millimetre", "millimetres"),
    "kg": ("kilogram", "kilograms"),
    "kW": ("kilowatt", "kilowatts"),
    "min": ("minute", "minutes"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "hPa": ("hectopascal", "hectopascals"),
    "ms": ("millisecond", "milliseconds"),
    "m": ("metre", "metres"),
    "g": ("gram", "grams"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
    "h": ("hour", "hours"),
    "s": ("second", "seconds"),
    "l": ("litre", "litres"),
    "L": ("litre", "litres"),
}

_UNITS_ZH: dict[str, str] = {
    "km/h": "公里每小时",
    "m/s": "米每秒",
    "kWh": "千瓦时",
    "km": "公里",
    "cm": "厘米",
    "mm": "毫米",
    "kg": "公斤",
    "kW": "千瓦",
    "°C": "摄氏度",
    "°F": "华氏度",
    "min": "分钟",
    "m": "米",
    "g": "克",
    "W": "瓦",
    "V": "伏",
    "h": "小时",
    "s": "秒",
    "%": "",
}


# A number: whole runs of digits only. It starts with a digit that does not
# follow one (`\d(?<!\d\d)`: a digit first, so `re` can skip ahead to the
# next digit), and each run is taken whole (possessive `*+`, `++`, `?+`). A
# number cut short inside a run would be followed by a digit, which no unit
# starts with, so this matches exactly what `\d+(?:[.,]\d+)?` matched; but
# that was tried from every digit of a run and backtracked over the rest of
# it each time: quadratic in a long run of digits.
_NUMBER = r"(?P<num>\d(?<!\d\d)\d*+(?:{point}\d++)?+)"


def _unit_pattern(units: list[str]) -> re.Pattern[str]:
    ordered = sorted(units, key=len, reverse=True)
    alternatives = "|".join(re.escape(unit) for unit in ordered)
    # A number, optional space, a unit that is not the start of a longer word.
    number = _NUMBER.format(point="[.,]")
    return re.compile(rf"{number}\s?(?P<unit>{alternatives})(?![\w/])")


_EN_PATTERN = _unit_pattern(list(_UNITS_EN))
_ZH_PATTERN = _unit_pattern(list(_UNITS_ZH))
_ZH_PERCENT = re.compile(_NUMBER.format(point=r"\.") + r"\s?%")


def _is_one(number: str) -> bool:
    return number in {"1", "1.0"}


def _expand_en(match: re.Match[str]) -> str:
    number, unit = match["num"], match["unit"]
    singular, plural = _UNITS_EN[unit]
    return f"{number} {singular if _is_one(number) else plural}"


def _expand_zh(match: re.Match[str]) -> str:
    return f"{match['num']}{_UNITS_ZH[match['unit']]}"


def normalize_text(text: str, language: str | None) -> str:
    """Return `text` with units spelled out for `language` (a BCP 47-ish code)."""
    base = (language or "en").replace("_", "-").split("-")[0].lower()
    if base in {"zh", "cmn", "yue"}:
        text = _ZH_PERCENT.sub(lambda m: f"百分之{m['num']}", text)
        return _ZH_PATTERN.sub(_expand_zh, text)
    if base == "en":
        return _EN_PATTERN.sub(_expand_en, text)
    return text


# C0/C1 control characters other than tab and newline, and lone surrogates,
# which cannot be encoded for the synthesiser.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Remove what cannot be spoken: control characters and lone surrogates."""
    return _CONTROL.sub(" ", text).strip()
