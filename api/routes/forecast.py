"""GET /v1/bins/{device_id}/forecast: when a bin will reach its full threshold, from its own history."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel

from api.deps import CityDep, Conn, ViewerKey
from api.errors import ERROR_RESPONSES
from api.params import ID_PATTERN
from api.queries.bin_fill import hourly_fill
from pisman.forecast import Forecast, forecast_bin

router = APIRouter(prefix="/v1", tags=["bins"], responses=ERROR_RESPONSES)

LOOKBACK_DAYS = 28

FIND_DEVICE = """
SELECT d.device_id, d.kind, d.site_id, s.name, s.district_id, s.kelurahan,
       coalesce(d.full_threshold, c.bin_full_threshold)
FROM device d JOIN site s ON s.site_id = d.site_id JOIN city c ON c.city_id = d.city_id
WHERE d.device_id = %s AND d.city_id = %s
"""


class TimeToThreshold(BaseModel):
    """Hours from `as_of` until the threshold, and the local time: expected, and the band's ends."""

    expected_h: float | None
    earliest_h: float | None
    latest_h: float | None
    expected_at: str | None
    earliest_at: str | None
    latest_at: str | None


class BinForecast(BaseModel):
    """A bin's forecast; `status` is `ok` or `insufficient_history` (then `message` says why)."""

    device_id: str
    site_id: str
    site_name: str
    district_id: str
    as_of: str
    status: str
    message: str
    threshold_pct: float
    current_fill_pct: float | None
    rate_pct_per_day: float | None
    band_low: float | None
    band_high: float | None
    to_threshold: TimeToThreshold | None
    to_full: TimeToThreshold | None
    rate_pct_by_hour_of_week: list[float]
    history_hours: int
    emptyings: int


def _when(fc: Forecast, hours: float | None, tz: ZoneInfo) -> str | None:
    if hours is None:
        return None
    return (fc.as_of + timedelta(hours=hours)).astimezone(tz).isoformat(timespec="minutes")


def _time_to(fc: Forecast, level: float, tz: ZoneInfo) -> TimeToThreshold:
    exp = fc.hours_until(level)
    early = fc.hours_until(level, fc.band_high)
    late = fc.hours_until(level, fc.band_low)
    return TimeToThreshold(
        expected_h=None if exp is None else round(exp, 1),
        earliest_h=None if early is None else round(early, 1),
        latest_h=None if late is None else round(late, 1),
        expected_at=_when(fc, exp, tz),
        earliest_at=_when(fc, early, tz),
        latest_at=_when(fc, late, tz),
    )


def forecast_answer(row: tuple[Any, ...], fc: Forecast, tz: ZoneInfo) -> BinForecast:
    """The response body for one bin."""
    threshold = float(row[6])
    ok = fc.ok
    return BinForecast(
        device_id=row[0],
        site_id=row[2],
        site_name=row[3],
        district_id=row[4],
        as_of=fc.as_of.astimezone(tz).isoformat(timespec="seconds"),
        status=fc.status,
        message=fc.message
        or "perkiraan dari riwayat isi tempat sampah ini / forecast from this bin's own fill history",
        threshold_pct=round(threshold * 100, 1),
        current_fill_pct=round(fc.current_fill * 100, 1) if fc.current_fill is not None else None,
        rate_pct_per_day=round(fc.rate_per_day * 100, 2) if ok else None,
        band_low=round(fc.band_low, 3) if ok else None,
        band_high=round(fc.band_high, 3) if ok else None,
        to_threshold=_time_to(fc, threshold, tz) if ok else None,
        to_full=_time_to(fc, 1.0, tz) if ok else None,
        rate_pct_by_hour_of_week=[round(r * 100, 3) for r in fc.rate_by_hour_of_week],
        history_hours=fc.history_hours,
        emptyings=fc.emptyings,
    )


@router.get(
    "/bins/{device_id}/forecast",
    summary="When a bin reaches its full threshold (and 100 %), from its own fill history",
)
async def get_bin_forecast(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    device_id: Annotated[str, Path(pattern=ID_PATTERN)],
) -> BinForecast:
    """Fill rate by hour of week over the last 28 days, robust to emptyings and sensor noise.

    404 for a device unknown in this city, 422 for a device that is not a bin sensor; a bin
    with too little history answers `status: insufficient_history` with the reason.
    """
    row = await (await conn.execute(FIND_DEVICE, (device_id, city.city_id))).fetchone()
    if row is None:
        raise HTTPException(404, detail=f"no device {device_id!r} in city {city.city_id!r}")
    if row[1] != "bin_sensor":
        raise HTTPException(
            422,
            detail=f"device {device_id!r} is a {row[1]}, not a bin sensor: only bins have a fill forecast",
        )
    now = datetime.now(city.tz)
    history = await hourly_fill(
        conn, city_id=city.city_id, device_ids=[device_id], end=now, days=LOOKBACK_DAYS
    )
    fc = await asyncio.to_thread(
        forecast_bin, history[device_id], as_of=now, tz=city.tz, lookback_days=LOOKBACK_DAYS
    )
    return forecast_answer(row, fc, city.tz)
