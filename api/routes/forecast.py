"""GET /v1/bins/forecast and /v1/bins/{device_id}/forecast: when bins reach their full threshold,
from their own fill history."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import CityDep, Conn, HeavyLane, ViewerKey
from api.errors import ERROR_RESPONSES
from api.params import ID_PATTERN
from api.queries.bin_fill import BinSubject, HourlyFill, active_bins, find_device, hourly_fill
from pisman.contract import BinForecast, BinForecastItem, BinForecastsAnswer, TimeToThreshold
from pisman.domain import DeviceKind
from pisman.forecast import Forecast, forecast_hours

router = APIRouter(prefix="/v1", tags=["bins"], responses=ERROR_RESPONSES)

LOOKBACK_DAYS = 28
OK_MESSAGE = (
    "perkiraan dari riwayat isi tempat sampah ini / forecast from this bin's own fill history"
)


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


def _item_fields(bin_: BinSubject, fc: Forecast, tz: ZoneInfo) -> dict[str, object]:
    threshold = float(bin_.threshold)
    ok = fc.ok
    return {
        "device_id": bin_.device_id,
        "site_id": bin_.site_id,
        "site_name": bin_.site_name,
        "district_id": bin_.district_id,
        "district_name": bin_.district_name,
        "status": fc.status,
        "reason": fc.reason or None,
        "message": fc.message or OK_MESSAGE,
        "threshold_pct": round(threshold * 100, 1),
        "current_fill_pct": round(fc.current_fill * 100, 1)
        if fc.current_fill is not None
        else None,
        "rate_pct_per_day": round(fc.rate_per_day * 100, 2) if ok else None,
        "to_threshold": _time_to(fc, threshold, tz) if ok else None,
        "to_full": _time_to(fc, 1.0, tz) if ok else None,
        "history_hours": fc.history_hours,
        "emptyings": fc.emptyings,
    }


def forecast_answer(bin_: BinSubject, fc: Forecast, tz: ZoneInfo) -> BinForecast:
    """The response body for one bin: its forecast, band and hourly profile."""
    ok = fc.ok
    return BinForecast.model_validate(
        {
            **_item_fields(bin_, fc, tz),
            "as_of": fc.as_of.astimezone(tz).isoformat(timespec="seconds"),
            "band_low": round(fc.band_low, 3) if ok else None,
            "band_high": round(fc.band_high, 3) if ok else None,
            "rate_pct_by_hour_of_week": [round(r * 100, 3) for r in fc.rate_by_hour_of_week],
        }
    )


def _forecast(history: HourlyFill, now: datetime, tz: ZoneInfo) -> Forecast:
    return forecast_hours(
        history.hours, history.fills, as_of=now, tz=tz, lookback_days=LOOKBACK_DAYS
    )


def _soonest_first(item: BinForecastItem) -> tuple[int, float, str]:
    """Bins at their threshold first, then by expected hours; no forecast (or none within the
    horizon) last."""
    to = item.to_threshold
    if to is None or to.expected_h is None:
        return (1 if to is not None else 2, math.inf, item.device_id)
    return (0, to.expected_h, item.device_id)


def forecast_items(
    bins: list[BinSubject], history: dict[str, HourlyFill], now: datetime, tz: ZoneInfo
) -> list[BinForecastItem]:
    """Every bin's forecast, soonest to its threshold first (CPU work: run it in a thread)."""
    items = [
        BinForecastItem.model_validate(
            _item_fields(b, _forecast(history[b.device_id], now, tz), tz)
        )
        for b in bins
    ]
    return sorted(items, key=_soonest_first)


@router.get(
    "/bins/forecast",
    summary="Every bin's forecast at once: time until its full threshold, soonest first",
    dependencies=[HeavyLane],
)
async def get_bin_forecasts(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    district: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="Only this district's bins.")
    ] = None,
) -> BinForecastsAnswer:
    """The forecast of every active bin sensor of the city (or one district) in one answer: the
    time until its threshold and until 100 % (expected, and a fast and a slow day), or
    `insufficient_history` with the reason. Without the per-bin hourly profile and band (ask
    /v1/bins/{device_id}/forecast for those). 404 for a district the city does not have.
    """
    bins = await active_bins(conn, city_id=city.city_id, district=district)
    if bins is None:
        raise HTTPException(404, detail=f"no district {district!r} in city {city.city_id!r}")
    now = datetime.now(city.tz)
    history = await hourly_fill(
        conn,
        city_id=city.city_id,
        device_ids=[b.device_id for b in bins],
        end=now,
        days=LOOKBACK_DAYS,
    )
    items = await asyncio.to_thread(forecast_items, bins, history, now, city.tz)
    return BinForecastsAnswer(
        city=city.city_id,
        district=district,
        as_of=now.isoformat(timespec="seconds"),
        lookback_days=LOOKBACK_DAYS,
        bins=items,
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
    bin_ = await find_device(conn, city_id=city.city_id, device_id=device_id)
    if bin_ is None:
        raise HTTPException(404, detail=f"no device {device_id!r} in city {city.city_id!r}")
    if bin_.kind != DeviceKind.BIN_SENSOR.value:
        raise HTTPException(
            422,
            detail=f"device {device_id!r} is a {bin_.kind}, not a bin sensor: only bins have a fill forecast",
        )
    now = datetime.now(city.tz)
    history = await hourly_fill(
        conn, city_id=city.city_id, device_ids=[device_id], end=now, days=LOOKBACK_DAYS
    )
    fc = await asyncio.to_thread(_forecast, history[device_id], now, city.tz)
    return forecast_answer(bin_, fc, city.tz)
