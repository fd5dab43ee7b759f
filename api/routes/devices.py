"""GET /v1/devices and /v1/devices/{device_id}: last seen, online/offline, battery, fill."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import CityDep, Conn, ViewerKey
from api.params import ID_PATTERN
from pisman.domain import SILENT_INTERVALS

router = APIRouter(prefix="/v1", tags=["devices"])

# Offline: silent for SILENT_INTERVALS reporting intervals, or a last-will 'offline'.
DEVICES = """
SELECT d.device_id, d.kind, d.site_id, s.name, s.district_id, d.reporting_interval_s,
       ds.last_seen_at, ds.last_reading_ts,
       CASE WHEN ds.last_seen_at IS NULL THEN 'never_seen'
            WHEN ds.connection = 'offline'
              OR ds.last_seen_at < now() - make_interval(secs => %(silent)s * d.reporting_interval_s)
            THEN 'offline' ELSE 'online' END AS status,
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


def _iso(t: datetime | None, tz: ZoneInfo) -> str | None:
    return t.astimezone(tz).isoformat() if t is not None else None


def _device_item(r: tuple[Any, ...], tz: ZoneInfo) -> dict[str, Any]:
    return {
        "device_id": r[0],
        "kind": r[1],
        "site_id": r[2],
        "site_name": r[3],
        "district_id": r[4],
        "reporting_interval_s": r[5],
        "last_seen_at": _iso(r[6], tz),
        "last_reading_ts": _iso(r[7], tz),
        "status": r[8],
        "silent_for_s": r[9],
        "battery_pct": float(r[10]) if r[10] is not None else None,
        "fill_pct": round(float(r[11]), 1) if r[11] is not None else None,
    }


async def list_device_items(
    conn: Conn,
    *,
    city_id: str,
    tz: ZoneInfo,
    device_id: str | None = None,
    site_id: str | None = None,
    kind: str | None = None,
    district: str | None = None,
) -> list[dict[str, Any]]:
    """Devices with their current status (also used by sites and alerts)."""
    params = {
        "city": city_id,
        "device": device_id,
        "site": site_id,
        "kind": kind,
        "district": district,
        "silent": SILENT_INTERVALS,
    }
    rows = await (await conn.execute(DEVICES, params)).fetchall()
    return [_device_item(r, tz) for r in rows]


@router.get("/devices", summary="Devices with last-seen, status and battery")
async def get_devices(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    kind: Annotated[Literal["weighbridge", "platform_scale", "bin_sensor"] | None, Query()] = None,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    status: Annotated[
        Literal["online", "offline"] | None,
        Query(description="online, or offline (silent or never seen)"),
    ] = None,
) -> list[dict[str, Any]]:
    """Devices of the city; offline = silent for 3 reporting intervals or a last-will 'offline'."""
    items = await list_device_items(
        conn, city_id=city.city_id, tz=city.tz, kind=kind, district=district
    )
    if status == "online":
        items = [i for i in items if i["status"] == "online"]
    elif status == "offline":
        items = [i for i in items if i["status"] != "online"]
    return items


@router.get("/devices/{device_id}", summary="One device")
async def get_device(
    conn: Conn, key: ViewerKey, city: CityDep, device_id: Annotated[str, Path(pattern=ID_PATTERN)]
) -> dict[str, Any]:
    """One device with its status; 404 when unknown in this city."""
    items = await list_device_items(conn, city_id=city.city_id, tz=city.tz, device_id=device_id)
    if not items:
        raise HTTPException(404, detail=f"no device {device_id!r} in city {city.city_id!r}")
    return items[0]
