"""Per-process cache of the tonnage query's raw rows over closed past days, checked against sql/021's counters."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from pisman.logs import log_event

log = logging.getLogger(__name__)

# Days that ended more than this long ago are cacheable. sql/021's triggers bump a day's counter
# for every write once the day ended more than one day ago: the extra day is the safety margin.
CLOSED_AFTER = timedelta(days=2)
MAX_ENTRIES = 256

# Read BEFORE the rows: a write committing in between makes the stored fingerprint older than
# the rows, so the next check misses (never the other way round).
FINGERPRINT_SQL = """
SELECT (SELECT oid FROM pg_database WHERE datname = current_database()),
       r.enabled, r.version,
       (SELECT coalesce(sum(v.version), 0) FROM api_closed_day_version AS v
        WHERE v.city_id = %(city)s AND v.bucket >= %(start)s AND v.bucket < %(end)s)
FROM api_tonnage_reference AS r
"""

Rows = list[tuple[Any, ...]]


def closed_end(start: datetime, end: datetime, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The local midnight up to which [start, end) lies in closed days, or None if none does."""
    today = now.astimezone(tz).date()
    horizon = datetime.combine(today - CLOSED_AFTER, datetime.min.time(), tzinfo=tz)
    split = min(end, horizon)
    return split if split > start else None


def month_chunks(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at local month starts: each piece is cached (and invalidated) alone."""
    out: list[tuple[datetime, datetime]] = []
    lo = start
    while lo < end:
        local = lo.astimezone(tz)
        first = local.date().replace(day=1)
        nxt = (
            first.replace(year=first.year + 1, month=1)
            if first.month == 12
            else first.replace(month=first.month + 1)
        )
        hi = min(end, datetime.combine(nxt, datetime.min.time(), tzinfo=tz))
        out.append((lo, hi))
        lo = hi
    return out


@dataclass(slots=True)
class ClosedDayCache:
    """LRU of raw rows keyed by database, statement and parameters; valid while the fingerprint holds."""

    max_entries: int = MAX_ENTRIES
    hits: int = 0
    misses: int = 0
    _entries: OrderedDict[Hashable, tuple[tuple[Any, ...], Rows]] = field(
        default_factory=OrderedDict
    )

    async def rows(
        self,
        conn: psycopg.AsyncConnection,
        *,
        city_id: str,
        start: datetime,
        end: datetime,
        key: Hashable,
        fetch: Callable[[], Awaitable[Rows]],
    ) -> Rows:
        """Cached rows for a closed range [start, end), or fetch() them and remember them."""
        cur = await conn.execute(FINGERPRINT_SQL, {"city": city_id, "start": start, "end": end})
        found = await cur.fetchone()
        if found is None or not found[1]:
            return await fetch()  # TimescaleDB: no triggers on the aggregate, so no cache
        db_oid, fingerprint = found[0], tuple(found[2:])
        full_key = (db_oid, key)
        entry = self._entries.get(full_key)
        if entry is not None and entry[0] == fingerprint:
            self._entries.move_to_end(full_key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        rows = await fetch()
        self._entries[full_key] = (fingerprint, rows)
        self._entries.move_to_end(full_key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        log_event(log, logging.DEBUG, "tonnage_cache_fill", entries=len(self._entries))
        return rows

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()


CACHE = ClosedDayCache()
