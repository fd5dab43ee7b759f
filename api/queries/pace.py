"""The pace of a day: the share of a day's tonnage normally weighed by a local time of day.

From the city's own history first: the hourly tonnage of the same weekday in each of the last
HISTORY_WEEKS weeks (weighing_hourly through THE tonnage query, so every hour is booked as the
other figures book it). A measure whose history has fewer than MIN_HISTORY_DAYS days with
tonnage takes the hourly profile the city file declares instead (sql/050_city_pace_profile.sql,
stored by `pisman city load`); without either there is no expectation (basis "none").
docs/api-contract.md, "/v1/progress: pace and yesterday", says what the figures mean."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg

from api.params import local_midnight
from api.queries.rows import fetch_one
from api.queries.tonnage import RangeNotAligned, TonnageQuery, tonnage

HISTORY_WEEKS = 4
# Two of the four same weekdays with tonnage make a history; fewer is a city that just started
# (or a measure it does not weigh yet), and one partial first day would set the whole pace.
MIN_HISTORY_DAYS = 2
HOURS = 24
# The measures with a pace: collected against the generation target, the three fates against theirs.
PACE_MEASURES: tuple[str, ...] = ("collected", "reduce", "utilize", "residual")

# history: the city's own hours; city_profile: the declared profile; none: neither exists;
# day_over / day_not_begun: a past day expects its whole target, a future one nothing.
Basis = Literal["history", "city_profile", "none", "day_over", "day_not_begun"]

CITY_PROFILE = "SELECT hourly, source FROM city_pace_profile WHERE city_id = %(city)s"


@dataclass(frozen=True, slots=True)
class CityProfileRow:
    """The city's declared hourly profile (relative factors, hours 0..23) and its source."""

    hourly: list[Decimal]
    source: str


@dataclass(frozen=True, slots=True)
class HourlyWeights:
    """Tonnage (or relative factors) per local hour 0..23 of a day."""

    weights: tuple[Decimal, ...]

    def share_by(self, clock_h: Decimal) -> Decimal | None:
        """The share of the day's total weighed before the local clock time `clock_h` (hours,
        0..24; within an hour, in proportion to the minutes gone); None when the day's total is
        not positive. Clamped to 0..1 (a facility's residue counts negative in `utilize`)."""
        total = sum(self.weights, Decimal(0))
        if total <= 0:
            return None
        clock_h = min(max(clock_h, Decimal(0)), Decimal(HOURS))
        whole = int(clock_h)
        before = sum(self.weights[:whole], Decimal(0))
        if whole < HOURS:
            before += self.weights[whole] * (clock_h - whole)
        return min(max(before / total, Decimal(0)), Decimal(1))


@dataclass(frozen=True, slots=True)
class MeasureShare:
    """A measure's share of a day expected by the clock time, and where it comes from."""

    share: Decimal | None
    basis: Basis
    history_days: int


@dataclass(frozen=True, slots=True)
class DayShares:
    """Each pace measure's expected share by a clock time, with the history it was drawn from."""

    measures: dict[str, MeasureShare]
    history_days: list[date]
    profile_source: str | None


def history_days(day: date) -> list[date]:
    """The same weekday in each of the HISTORY_WEEKS weeks before `day`, oldest first."""
    return [day - timedelta(weeks=k) for k in range(HISTORY_WEEKS, 0, -1)]


Hourly = tuple[dict[str, list[Decimal]], dict[str, int]]
# The history of a (city, day) is four past days: it changes only when late readings reach
# them, so one computation serves every request for HISTORY_TTL_S (late data shows after at most
# that long). Computing it is four hourly tonnage queries (~27,000 rollup rows for Bandung): most
# of a progress request if done every time. Bounded: a few cities x a few days.
HISTORY_TTL_S = 600.0
HISTORY_CACHE_MAX = 256
_history_cache: dict[tuple[str, int, str, str, str, date], tuple[float, Hourly]] = {}


async def _history_by_hour(
    conn: psycopg.AsyncConnection, city_id: str, tz: ZoneInfo, days: Sequence[date]
) -> Hourly:
    """Kilograms per measure and local hour over `days`, and the days each measure has tonnage
    (kept for HISTORY_TTL_S per database, city, zone and day)."""
    info = conn.info
    key = (info.host, info.port, info.dbname, city_id, tz.key, days[-1])
    now = time.monotonic()
    cached = _history_cache.get(key)
    if cached is not None and now - cached[0] < HISTORY_TTL_S:
        return cached[1]
    found = await _read_history_by_hour(conn, city_id, tz, days)
    if len(_history_cache) >= HISTORY_CACHE_MAX:
        _history_cache.clear()
    _history_cache[key] = (now, found)
    return found


async def _read_history_by_hour(
    conn: psycopg.AsyncConnection, city_id: str, tz: ZoneInfo, days: Sequence[date]
) -> Hourly:
    """The history read from the hourly rollup through THE tonnage query."""
    hourly = {m: [Decimal(0)] * HOURS for m in PACE_MEASURES}
    days_with: dict[str, int] = dict.fromkeys(PACE_MEASURES, 0)
    for d in days:
        query = TonnageQuery(
            city_id,
            tz,
            local_midnight(d, tz),
            local_midnight(d + timedelta(days=1), tz),
            "hour",
            ("category",),
            measures=("fate", "collected"),
        )
        try:
            result = await tonnage(conn, query)
        except RangeNotAligned:
            # A zone whose midnight is not a whole UTC hour: the hourly rollup cannot be cut at
            # local days, so the declared profile stands in.
            return hourly, dict.fromkeys(PACE_MEASURES, 0)
        day_kg: dict[str, Decimal] = {}
        for row in result.rows:
            measure = str(row.groups.get("category"))
            if measure not in hourly:
                continue
            hourly[measure][row.bucket_start.astimezone(tz).hour] += row.kg
            day_kg[measure] = day_kg.get(measure, Decimal(0)) + row.kg
        for measure, kg in day_kg.items():
            if kg > 0:
                days_with[measure] += 1
    return hourly, days_with


async def expected_shares(
    conn: psycopg.AsyncConnection, *, city_id: str, tz: ZoneInfo, day: date, clock_h: Decimal
) -> DayShares:
    """Each measure's share of `day`'s tonnage normally weighed by local clock time `clock_h`."""
    days = history_days(day)
    # A day that is over expects its whole target, one not begun nothing: no profile needed.
    if clock_h >= HOURS:
        return DayShares(
            {m: MeasureShare(Decimal(1), "day_over", 0) for m in PACE_MEASURES}, days, None
        )
    if clock_h <= 0:
        return DayShares(
            {m: MeasureShare(Decimal(0), "day_not_begun", 0) for m in PACE_MEASURES}, days, None
        )
    hourly, days_with = await _history_by_hour(conn, city_id, tz, days)
    measures: dict[str, MeasureShare] = {}
    short = [
        m
        for m in PACE_MEASURES
        if days_with[m] < MIN_HISTORY_DAYS
        or HourlyWeights(tuple(hourly[m])).share_by(clock_h) is None
    ]
    declared = (
        await fetch_one(conn, CityProfileRow, CITY_PROFILE, {"city": city_id}) if short else None
    )
    fallback = HourlyWeights(tuple(declared.hourly)) if declared else None
    for m in PACE_MEASURES:
        if m not in short:
            own = HourlyWeights(tuple(hourly[m])).share_by(clock_h)
            measures[m] = MeasureShare(own, "history", days_with[m])
        elif fallback is not None:
            measures[m] = MeasureShare(fallback.share_by(clock_h), "city_profile", days_with[m])
        else:
            measures[m] = MeasureShare(None, "none", days_with[m])
    return DayShares(measures, days, declared.source if declared else None)
