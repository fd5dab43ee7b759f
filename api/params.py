"""Parsing of request parameters (local dates, months, group lists) into values or 422 messages."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi import HTTPException

# The id rules live in the domain vocabulary (ingest and the city loader check the same ones).
from pisman.domain import ID_PATTERN as ID_PATTERN

MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
YEAR_PATTERN = re.compile(r"^\d{4}$")
# Dates outside these years are refused with a 422: far enough for any real question, and
# arithmetic on them (a week before, a day after, a zone shift) can never leave datetime's range.
MIN_YEAR = 1970
MAX_YEAR = 2200


def bad_request(message: str) -> HTTPException:
    """A 422 whose detail says what to fix."""
    return HTTPException(status_code=422, detail=message)


def check_year(name: str, year: int, value: str) -> None:
    """422 unless the year is one the API answers for (every date form passes here)."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise bad_request(
            f"'{name}' must be between the years {MIN_YEAR} and {MAX_YEAR}; got {value[:40]!r}"
        )


def parse_instant(name: str, value: str, tz: ZoneInfo) -> datetime:
    """A `YYYY-MM-DD` local date (local midnight) or an ISO-8601 datetime (naive = local)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            check_year(name, day.year, value)
            return datetime.combine(day, time(0), tzinfo=tz)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            f"'{name}' must be a date YYYY-MM-DD or an ISO-8601 datetime such as "
            f"2026-11-01T00:00:00+07:00; got {value[:40]!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    check_year(name, parsed.year, value)
    return parsed


def parse_range(
    start_text: str, end_text: str, tz: ZoneInfo, *, max_days: int
) -> tuple[datetime, datetime]:
    """A half-open [from, to) range; 422 when reversed, empty or longer than max_days."""
    start = parse_instant("from", start_text, tz)
    end = parse_instant("to", end_text, tz)
    if end <= start:
        raise bad_request(
            f"'from' ({start_text}) must be before 'to' ({end_text}); 'to' is exclusive"
        )
    if end - start > timedelta(days=max_days):
        raise bad_request(
            f"the range from {start_text} to {end_text} is longer than {max_days} days; ask for less"
        )
    return start, end


def parse_local_date(name: str, value: str | None, tz: ZoneInfo) -> date:
    """A local date (default: today in the zone)."""
    if value is None or value == "":
        return datetime.now(tz).date()
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise bad_request(f"'{name}' must be a date YYYY-MM-DD; got {value[:40]!r}") from None
    check_year(name, parsed.year, value)
    return parsed


def parse_month(name: str, value: str) -> date:
    """A month `YYYY-MM` as the date of its first day."""
    match = MONTH_PATTERN.match(value.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise bad_request(f"'{name}' must be a month YYYY-MM such as 2026-10; got {value[:40]!r}")
    year = int(match.group(1))
    check_year(name, year, value)
    return date(year, int(match.group(2)), 1)


def parse_year(name: str, value: str) -> int:
    """A year `YYYY` the API answers for."""
    text = value.strip()
    if not YEAR_PATTERN.match(text):
        raise bad_request(f"'{name}' must be a year YYYY such as 2026; got {value[:40]!r}")
    year = int(text)
    check_year(name, year, value)
    return year


def next_month(first: date) -> date:
    """The first day of the following month."""
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def parse_month_range(
    month: str, to_month: str | None, *, max_months: int = 36
) -> tuple[date, date]:
    """[first day of month, first day after to_month); 422 when reversed or too long."""
    first = parse_month("month", month)
    last = parse_month("to_month", to_month) if to_month else first
    if last < first:
        raise bad_request(f"'to_month' ({to_month}) must not be before 'month' ({month})")
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > max_months:
        raise bad_request(f"at most {max_months} months per export; asked for {months}")
    return first, next_month(last)


def parse_group_by(
    value: str | None, allowed: tuple[str, ...], default: tuple[str, ...]
) -> tuple[str, ...]:
    """A comma list of group columns, each from `allowed`, without repeats."""
    if value is None or value.strip() == "":
        return default
    groups: list[str] = []
    for part in value.split(","):
        name = part.strip()
        if name not in allowed:
            raise bad_request(
                f"unknown group {name[:40]!r} in 'group_by'; use a comma list of {', '.join(allowed)}"
            )
        if name not in groups:
            groups.append(name)
    return tuple(groups)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """00:00 of a local date."""
    return datetime.combine(day, time(0), tzinfo=tz)
