"""Quarantine reasons stay short and storable, whatever the device sent."""

from __future__ import annotations

# A reason names the problem and quotes a little of the input; it never carries the payload.
MAX_REASON_CHARS = 500
# How much of one offending input value a reason quotes.
MAX_QUOTED_CHARS = 60
ELLIPSIS = "…"


def quoted(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """repr() of a value from a device, cut to `limit` characters with an ellipsis."""
    if isinstance(value, str | bytes) and len(value) > limit:
        value = value[:limit]
        return repr(value)[: limit - 1] + ELLIPSIS
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Text a PostgreSQL text column accepts (no NUL, no lone surrogate), at most `limit` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]
    return text
