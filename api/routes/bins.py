"""GET /v1/bins: current fill of every bin sensor and which bins need collection."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.deps import CityDep, Conn, ViewerKey
from api.params import ID_PATTERN
from pisman.domain import SILENT_INTERVALS

router = APIRouter(prefix="/v1", tags=["bins"])

# The newest stored reading per bin (the dedupe index (device_id, ts, seq) serves the LATERAL).
BINS = """
SELECT d.device_id, d.site_id, s.name, s.district_id, di.name, s.lat, s.lon,
       b.fill_ratio, coalesce(d.full_threshold, c.bin_full_threshold) AS threshold,
       coalesce(b.battery_pct, ds.battery_pct), b.temperature_c, b.fire, b.tilt, b.lid_open, b.ts,
       CASE WHEN ds.last_seen_at IS NULL THEN 'never_seen'
            WHEN ds.connection = 'offline'
              OR ds.last_seen_at < now() - make_interval(secs => %(silent)s * d.reporting_interval_s)
            THEN 'offline' ELSE 'online' END AS status
FROM device d
JOIN city c ON c.city_id = d.city_id
JOIN site s ON s.site_id = d.site_id
JOIN district di ON di.city_id = s.city_id AND di.district_id = s.district_id
LEFT JOIN device_state ds ON ds.device_id = d.device_id
LEFT JOIN LATERAL (
  SELECT r.fill_ratio, r.battery_pct, r.temperature_c, r.fire, r.tilt, r.lid_open, r.ts
  FROM bin_reading r WHERE r.device_id = d.device_id ORDER BY r.ts DESC, r.seq DESC LIMIT 1
) b ON true
WHERE d.city_id = %(city)s AND d.kind = 'bin_sensor' AND d.active
  AND (%(district)s::text IS NULL OR s.district_id = %(district)s)
ORDER BY b.fill_ratio DESC NULLS LAST, d.device_id
"""


def _bin_item(r: tuple[Any, ...], tz: ZoneInfo) -> dict[str, Any]:
    fill, threshold = r[7], r[8]
    ts: datetime | None = r[14]
    return {
        "device_id": r[0],
        "site_id": r[1],
        "site_name": r[2],
        "district_id": r[3],
        "district_name": r[4],
        "lat": r[5],
        "lon": r[6],
        "fill_pct": round(float(fill) * 100, 1) if fill is not None else None,
        "threshold_pct": round(float(threshold) * 100, 1),
        "needs_collection": bool(fill is not None and fill >= threshold),
        "battery_pct": float(r[9]) if r[9] is not None else None,
        "temperature_c": float(r[10]) if r[10] is not None else None,
        "fire": bool(r[11]),
        "tilt": bool(r[12]),
        "lid_open": bool(r[13]),
        "reading_ts": ts.astimezone(tz).isoformat() if ts else None,
        "status": r[15],
    }


async def list_bin_items(
    conn: Conn, *, city_id: str, tz: ZoneInfo, district: str | None = None
) -> list[dict[str, Any]]:
    """Bins sorted by fill, fullest first (also used by alerts)."""
    params = {"city": city_id, "district": district, "silent": SILENT_INTERVALS}
    return [_bin_item(r, tz) for r in await (await conn.execute(BINS, params)).fetchall()]


@router.get("/bins", summary="Bins with current fill; those above their threshold need collection")
async def get_bins(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    needs_collection: Annotated[
        bool | None,
        Query(description="Only bins at or above their threshold (true) or below it (false)."),
    ] = None,
) -> list[dict[str, Any]]:
    """Bins of the city, fullest first."""
    items = await list_bin_items(conn, city_id=city.city_id, tz=city.tz, district=district)
    if needs_collection is not None:
        items = [i for i in items if i["needs_collection"] == needs_collection]
    return items
