"""THE device status rule (online, offline, never seen) and the device list built on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.queries.rows import fetch_all
from pisman.contract import Device
from pisman.domain import SILENT_INTERVALS, DeviceKind, DeviceStatus

# Offline: silent for SILENT_INTERVALS of its reporting intervals, or a last-will 'offline'.
# An SQL expression over `device d LEFT JOIN device_state ds`; every query that judges a
# device's connection uses it (the number is a constant of ours, never request text).
DEVICE_STATUS = f"""CASE WHEN ds.last_seen_at IS NULL THEN '{DeviceStatus.NEVER_SEEN.value}'
            WHEN ds.connection = 'offline'
              OR ds.last_seen_at < now() - make_interval(secs => {SILENT_INTERVALS:d} * d.reporting_interval_s)
            THEN '{DeviceStatus.OFFLINE.value}' ELSE '{DeviceStatus.ONLINE.value}' END"""

DEVICES = f"""
SELECT d.device_id, d.kind, d.site_id, s.name AS site_name, s.district_id, d.reporting_interval_s,
       ds.last_seen_at, ds.last_reading_ts, {DEVICE_STATUS} AS status,
       extract(epoch FROM now() - ds.last_seen_at)::bigint AS silent_for_s,
       ds.battery_pct, ds.fill_ratio * 100 AS fill_pct
FROM device d
JOIN site s ON s.site_id = d.site_id
LEFT JOIN device_state ds ON ds.device_id = d.device_id
WHERE d.city_id = %(city)s AND d.active
  AND (%(device)s::text IS NULL OR d.device_id = %(device)s)
  AND (%(site)s::text IS NULL OR d.site_id = %(site)s)
  AND (%(kind)s::text IS NULL OR d.kind = %(kind)s)
  AND (%(district)s::text IS NULL OR s.district_id = %(district)s)
ORDER BY d.device_id
"""


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A row of DEVICES."""

    device_id: str
    kind: str
    site_id: str
    site_name: str
    district_id: str
    reporting_interval_s: int
    last_seen_at: datetime | None
    last_reading_ts: datetime | None
    status: str
    silent_for_s: int | None
    battery_pct: Decimal | None
    fill_pct: Decimal | None

    def answer(self, tz: ZoneInfo) -> Device:
        """The row as the API shows it: local times, plain numbers."""
        return Device(
            device_id=self.device_id,
            kind=DeviceKind(self.kind),
            site_id=self.site_id,
            site_name=self.site_name,
            district_id=self.district_id,
            reporting_interval_s=self.reporting_interval_s,
            last_seen_at=local_iso(self.last_seen_at, tz),
            last_reading_ts=local_iso(self.last_reading_ts, tz),
            status=DeviceStatus(self.status),
            silent_for_s=self.silent_for_s,
            battery_pct=float(self.battery_pct) if self.battery_pct is not None else None,
            fill_pct=round(float(self.fill_pct), 1) if self.fill_pct is not None else None,
        )


def local_iso(t: datetime | None, tz: ZoneInfo) -> str | None:
    """A stored time in the city's offset (ISO-8601), or None."""
    return t.astimezone(tz).isoformat() if t is not None else None


async def list_devices(
    conn: psycopg.AsyncConnection[Any],
    *,
    city_id: str,
    tz: ZoneInfo,
    device_id: str | None = None,
    site_id: str | None = None,
    kind: DeviceKind | None = None,
    district: str | None = None,
) -> list[Device]:
    """The city's active devices with their status, in id order, filtered."""
    params = {
        "city": city_id,
        "device": device_id,
        "site": site_id,
        "kind": kind.value if kind is not None else None,
        "district": district,
    }
    return [r.answer(tz) for r in await fetch_all(conn, DeviceRow, DEVICES, params)]
