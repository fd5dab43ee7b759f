"""Numbers, dates and names for people, by Babel's CLDR rules for id_ID and en; a code's label."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal, format_percent

from dashboard.i18n import Lang
from pisman.contract import Label

# The Babel locale of each interface language.
LOCALES: dict[Lang, str] = {"id": "id_ID", "en": "en"}

# Plotly's layout.separators: decimal mark first, then the thousands separator (as Babel's).
PLOTLY_SEPARATORS: dict[Lang, str] = {"id": ",.", "en": ".,"}

# One date style per language everywhere: CLDR's medium date ('26 Nov 2026', 'Nov 26, 2026').
DATE_STYLE = "medium"
# The same style for Dash's date pickers (moment.js tokens) and Plotly's date axes (d3 tokens).
DATE_PICKER_FORMAT: dict[Lang, str] = {"id": "D MMM YYYY", "en": "MMM D, YYYY"}
PLOTLY_DATE_FORMAT: dict[Lang, str] = {"id": "%-d %b %Y", "en": "%b %-d, %Y"}

_UNITS: dict[Lang, tuple[tuple[str, int], ...]] = {
    "id": (("hari", 1440), ("jam", 60), ("menit", 1)),
    "en": (("d", 1440), ("h", 60), ("min", 1)),
}


def _locale(lang: Lang) -> str:
    return LOCALES.get(lang, LOCALES["id"])


def _rounded(value: Decimal, decimals: int) -> Decimal | None:
    """Rounded half up to `decimals` places (as people round); None for inf and nan."""
    if not value.is_finite():
        return None
    try:
        return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the context holds
        return None


def number(value: float | int | Decimal | None, lang: Lang, decimals: int = 1) -> str:
    """A number with the language's separators, rounded half up; '–' when unknown."""
    if value is None:
        return "–"
    exact = _rounded(Decimal(str(value)), decimals)
    if exact is None:
        return "–"
    if exact.is_zero():
        exact = abs(exact)  # -0,0 reads as a mistake
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    # Rounded above (half up, as people expect), so Babel only places the marks.
    return format_decimal(exact, format=pattern, locale=_locale(lang), decimal_quantization=False)


def tonnes(value: float | int | None, lang: Lang, decimals: int = 1) -> str:
    """A mass in tonnes, e.g. '1.234,5 t' (id) or '1,234.5 t' (en)."""
    return f"{number(value, lang, decimals)} t"


def percent(ratio: float | None, lang: Lang, decimals: int = 1) -> str:
    """A 0–1 ratio as a percentage: '21,4%' (id) or '21.4%' (en)."""
    if ratio is None:
        return "–"
    hundredths = _rounded(Decimal(str(ratio)) * 100, decimals)
    if hundredths is None:
        return "–"
    if hundredths.is_zero():
        hundredths = abs(hundredths)
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "") + "%"
    # Rounded half up above; Babel places the marks and the sign where the locale puts them.
    return format_percent(
        hundredths / 100, format=pattern, locale=_locale(lang), decimal_quantization=False
    )


def count(value: int | None, lang: Lang) -> str:
    """A whole number with thousands separators."""
    return number(value, lang, 0)


def _moment(value: str | datetime | None) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def timestamp(value: str | None, lang: Lang) -> str:
    """An ISO-8601 time (already in the city's offset) as the day and the time, e.g.
    '26 Nov 2026 14.05' (id) or 'Nov 26, 2026, 2:05 PM' (en); '–' when unknown."""
    moment = _moment(value)
    if moment is None:
        return value or "–"
    locale = _locale(lang)
    day_text = format_date(moment, DATE_STYLE, locale=locale)
    time_text = format_time(moment, "short", locale=locale)
    return f"{day_text} {time_text}" if lang == "id" else f"{day_text}, {time_text}"


def day(value: date | str | None, lang: Lang) -> str:
    """A calendar day: '26 Nov 2026' (id) or 'Nov 26, 2026' (en); '–' when unknown."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            parsed = date.fromisoformat(value[:10])
        except ValueError:
            return value
    else:
        parsed = value
    return format_date(parsed, DATE_STYLE, locale=_locale(lang))


def month(value: date | str | None, lang: Lang) -> str:
    """A month by its stand-alone name and year: 'Agustus 2026' (id), 'August 2026' (en)."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            parsed = date.fromisoformat(value[:7] + "-01")
        except ValueError:
            return value
    else:
        parsed = value
    return format_datetime(datetime(parsed.year, parsed.month, 1), "LLLL y", locale=_locale(lang))


def duration(seconds: float | None, lang: Lang) -> str:
    """A silence as the largest sensible unit: '3 jam' / '3 h', '2 hari' / '2 d'."""
    if seconds is None:
        return "–"
    minutes = seconds / 60
    for unit, size in _UNITS.get(lang, _UNITS["id"]):
        if minutes >= size:
            amount = number(minutes / size, lang, 0 if size == 1 else 1)
            return f"{amount} {unit}"
    return "< 1 menit" if lang == "id" else "< 1 min"


def label(items: Sequence[Label[Any]], code: str, lang: Lang) -> str:
    """The name of a code from a /v1/meta list in the language; the code itself if absent."""
    for item in items:
        if item.code == code:
            return (item.label_id if lang == "id" else item.label_en) or code
    return code
