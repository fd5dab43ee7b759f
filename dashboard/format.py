"""Numbers and names for people: Indonesian (1.234,5 t) or English (1,234.5 t); a code's label."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dashboard.i18n import Lang
from pisman.contract import Label

# Plotly's layout.separators: decimal mark first, then the thousands separator.
PLOTLY_SEPARATORS: dict[Lang, str] = {"id": ",.", "en": ".,"}


def number(value: float | int | Decimal | None, lang: Lang, decimals: int = 1) -> str:
    """A number with the language's separators, rounded half up; '–' when unknown."""
    if value is None:
        return "–"
    exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = f"{exact:,.{decimals}f}"
    if lang == "id":
        # Swap the marks: 1,234.5 -> 1.234,5 (through a placeholder).
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    if text.startswith("-") and not any(c in "123456789" for c in text):
        text = text[1:]  # -0,0 reads as a mistake
    return text


def tonnes(value: float | int | None, lang: Lang, decimals: int = 1) -> str:
    """A mass in tonnes, e.g. '1.234,5 t' (id) or '1,234.5 t' (en)."""
    return f"{number(value, lang, decimals)} t"


def percent(ratio: float | None, lang: Lang, decimals: int = 1) -> str:
    """A 0–1 ratio as a percentage: '21,4%' (id) or '21.4%' (en)."""
    if ratio is None:
        return "–"
    return f"{number(Decimal(str(ratio)) * 100, lang, decimals)}%"


def count(value: int | None, lang: Lang) -> str:
    """A whole number with thousands separators."""
    return number(value, lang, 0)


def timestamp(value: str | None, lang: Lang) -> str:
    """An ISO-8601 time (already in the city's offset) as 'dd/mm/yyyy HH:MM' (id) or 'yyyy-mm-dd HH:MM'."""
    if not value:
        return "–"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.strftime("%d/%m/%Y %H:%M" if lang == "id" else "%Y-%m-%d %H:%M")


def duration(seconds: float | None, lang: Lang) -> str:
    """A silence as the largest sensible unit: '3 jam' / '3 h', '2 hari' / '2 d'."""
    if seconds is None:
        return "–"
    minutes = seconds / 60
    units = (("hari", "d", 1440), ("jam", "h", 60), ("menit", "min", 1))
    for unit_id, unit_en, size in units:
        if minutes >= size:
            amount = number(minutes / size, lang, 0 if size == 1 else 1)
            return f"{amount} {unit_id if lang == 'id' else unit_en}"
    return "< 1 menit" if lang == "id" else "< 1 min"


def label(items: Sequence[Label[Any]], code: str, lang: Lang) -> str:
    """The name of a code from a /v1/meta list in the language; the code itself if absent."""
    for item in items:
        if item.code == code:
            return (item.label_id if lang == "id" else item.label_en) or code
    return code
