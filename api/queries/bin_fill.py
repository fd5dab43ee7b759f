"""Bins to forecast and their hourly mean fill over a span, from bin_hourly (the forecast and
the collection plan read it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from api.queries.rows import fetch_all, fetch_one
from pisman.domain import DeviceKind

# Hourly means from the rollup the API reads (sql/004: bin_hourly keeps sums and counts), one row
# per bin with its hours as epoch hours: a city's 28 days are ~175,000 hourly means, and one array
# per bin decodes far faster than a row (and a datetime) per hour.
HOURLY_FILL = """
SELECT device_id,
       array_agg((extract(epoch FROM bucket) / 3600)::bigint ORDER BY bucket) AS hours,
       array_agg((sum_fill_ratio / readings)::float8 ORDER BY bucket) AS fills
FROM bin_hourly
WHERE city_id = %(city)s AND device_id = ANY(%(devices)s)
  AND bucket >= %(start)s AND bucket < %(end)s AND readings > 0
GROUP BY device_id
"""


@dataclass(frozen=True, slots=True)
class HourlyFill:
    """A bin's hourly mean fill ratios: hour starts as epoch hours (UTC seconds // 3600)."""

    hours: list[int]
    fills: list[float]

    def __bool__(self) -> bool:
        return bool(self.hours)


NO_FILL = HourlyFill([], [])


async def hourly_fill(
    conn: psycopg.AsyncConnection, *, city_id: str, device_ids: list[str], end: datetime, days: int
) -> dict[str, HourlyFill]:
    """Hourly mean fill ratios per bin over the `days` before `end` (every asked bin is a key)."""
    params = {
        "city": city_id,
        "devices": device_ids,
        "start": end - timedelta(days=days),
        "end": end,
    }
    out = dict.fromkeys(device_ids, NO_FILL)
    for device_id, hours, fills in await (await conn.execute(HOURLY_FILL, params)).fetchall():
        out[device_id] = HourlyFill(hours, fills)
    return out


_SUBJECT_COLUMNS = """
SELECT d.device_id, d.kind, d.site_id, s.name AS site_name, s.district_id,
       di.name AS district_name, coalesce(d.full_threshold, c.bin_full_threshold) AS threshold
FROM device d
JOIN site s ON s.site_id = d.site_id
JOIN district di ON di.city_id = s.city_id AND di.district_id = s.district_id
JOIN city c ON c.city_id = d.city_id
"""
FIND_DEVICE = _SUBJECT_COLUMNS + "WHERE d.device_id = %(device)s AND d.city_id = %(city)s"
ACTIVE_BINS = (
    _SUBJECT_COLUMNS
    + f"""WHERE d.city_id = %(city)s AND d.kind = '{DeviceKind.BIN_SENSOR.value}' AND d.active
  AND (%(district)s::text IS NULL OR s.district_id = %(district)s)
ORDER BY d.device_id"""
)
DISTRICT_EXISTS = "SELECT 1 FROM district WHERE city_id = %(city)s AND district_id = %(district)s"


@dataclass(frozen=True, slots=True)
class BinSubject:
    """A device to forecast, with its site and its full threshold (a ratio)."""

    device_id: str
    kind: str
    site_id: str
    site_name: str
    district_id: str
    district_name: str
    threshold: Decimal


async def find_device(
    conn: psycopg.AsyncConnection[Any], *, city_id: str, device_id: str
) -> BinSubject | None:
    """A device of the city (of any kind: the caller says why a non-bin has no forecast)."""
    return await fetch_one(conn, BinSubject, FIND_DEVICE, {"device": device_id, "city": city_id})


async def active_bins(
    conn: psycopg.AsyncConnection[Any], *, city_id: str, district: str | None
) -> list[BinSubject] | None:
    """The city's (or a district's) active bin sensors; None for a district the city lacks."""
    params = {"city": city_id, "district": district}
    if district is not None:
        row = await (await conn.execute(DISTRICT_EXISTS, params)).fetchone()
        if row is None:
            return None
    return await fetch_all(conn, BinSubject, ACTIVE_BINS, params)
