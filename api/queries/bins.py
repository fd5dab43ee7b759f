"""Bins with their newest reading, fullest first, and which need collection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.queries.device_status import DEVICE_STATUS, local_iso
from api.queries.rows import fetch_all
from pisman.contract import Bin
from pisman.domain import DeviceKind, DeviceStatus

# The newest stored reading per bin (the dedupe index (device_id, ts, seq) serves the LATERAL).
BINS = f"""
SELECT d.device_id, d.site_id, s.name AS site_name, s.district_id, di.name AS district_name,
       s.lat, s.lon, b.fill_ratio, coalesce(d.full_threshold, c.bin_full_threshold) AS threshold,
       coalesce(b.battery_pct, ds.battery_pct) AS battery_pct, b.temperature_c,
       b.fire, b.tilt, b.lid_open, b.ts AS reading_ts, {DEVICE_STATUS} AS status
FROM device d
JOIN city c ON c.city_id = d.city_id
JOIN site s ON s.site_id = d.site_id
JOIN district di ON di.city_id = s.city_id AND di.district_id = s.district_id
LEFT JOIN device_state ds ON ds.device_id = d.device_id
LEFT JOIN LATERAL (
  SELECT r.fill_ratio, r.battery_pct, r.temperature_c, r.fire, r.tilt, r.lid_open, r.ts
  FROM bin_reading r WHERE r.device_id = d.device_id ORDER BY r.ts DESC, r.seq DESC LIMIT 1
) b ON true
WHERE d.city_id = %(city)s AND d.kind = '{DeviceKind.BIN_SENSOR.value}' AND d.active
  AND (%(district)s::text IS NULL OR s.district_id = %(district)s)
ORDER BY b.fill_ratio DESC NULLS LAST, d.device_id
"""


@dataclass(frozen=True, slots=True)
class BinRow:
    """A row of BINS (the reading's columns are null for a bin that never reported)."""

    device_id: str
    site_id: str
    site_name: str
    district_id: str
    district_name: str
    lat: float | None
    lon: float | None
    fill_ratio: Decimal | None
    threshold: Decimal
    battery_pct: Decimal | None
    temperature_c: Decimal | None
    fire: bool | None
    tilt: bool | None
    lid_open: bool | None
    reading_ts: datetime | None
    status: str

    def answer(self, tz: ZoneInfo) -> Bin:
        """The row as the API shows it: percentages, local time, plain numbers."""
        fill = self.fill_ratio
        return Bin(
            device_id=self.device_id,
            site_id=self.site_id,
            site_name=self.site_name,
            district_id=self.district_id,
            district_name=self.district_name,
            lat=self.lat,
            lon=self.lon,
            fill_pct=round(float(fill) * 100, 1) if fill is not None else None,
            threshold_pct=round(float(self.threshold) * 100, 1),
            needs_collection=bool(fill is not None and fill >= self.threshold),
            battery_pct=float(self.battery_pct) if self.battery_pct is not None else None,
            temperature_c=float(self.temperature_c) if self.temperature_c is not None else None,
            fire=bool(self.fire),
            tilt=bool(self.tilt),
            lid_open=bool(self.lid_open),
            reading_ts=local_iso(self.reading_ts, tz),
            status=DeviceStatus(self.status),
        )


async def list_bins(
    conn: psycopg.AsyncConnection[Any], *, city_id: str, tz: ZoneInfo, district: str | None = None
) -> list[Bin]:
    """The city's active bins, fullest first (never-reported bins last)."""
    params = {"city": city_id, "district": district}
    return [r.answer(tz) for r in await fetch_all(conn, BinRow, BINS, params)]
