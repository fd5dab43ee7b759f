"""GET /v1/alerts: full bins, fires, silent devices, low batteries, organic waste at the landfill."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CityDep, Conn, ViewerKey
from api.errors import ERROR_RESPONSES
from api.params import local_midnight
from api.queries.bins import list_bins
from api.queries.device_status import list_devices
from api.queries.organic_at_landfill import organic_at_landfill
from api.queries.tonnage import as_tonnes
from pisman.contract import Alert, Bin, Device
from pisman.domain import ID_PATTERN, AlertKind, DeviceStatus, Severity

router = APIRouter(prefix="/v1", tags=["alerts"], responses=ERROR_RESPONSES)
LOW_BATTERY_PCT = 20
CRITICAL_BATTERY_PCT = 5
RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def bin_alerts(b: Bin) -> list[Alert]:
    """A fire, and a bin at or above its threshold."""
    out = []
    where = {"device_id": b.device_id, "site_id": b.site_id, "district_id": b.district_id}
    if b.fire:
        out.append(
            Alert(
                kind=AlertKind.FIRE,
                severity=Severity.CRITICAL,
                **where,
                message_id=f"Api terdeteksi di {b.site_name}",
                message_en=f"Fire detected at {b.site_name}",
                since=b.reading_ts,
            )
        )
    if b.needs_collection:
        out.append(
            Alert(
                kind=AlertKind.BIN_FULL,
                severity=Severity.WARNING,
                **where,
                message_id=f"Kontainer {b.device_id} terisi {b.fill_pct}% — perlu diangkut",
                message_en=f"Bin {b.device_id} is {b.fill_pct}% full — needs collection",
                since=b.reading_ts,
            )
        )
    return out


def device_alerts(d: Device) -> list[Alert]:
    """A device gone silent, and a battery running low."""
    out = []
    where = {"device_id": d.device_id, "site_id": d.site_id, "district_id": d.district_id}
    if d.status == DeviceStatus.OFFLINE:
        out.append(
            Alert(
                kind=AlertKind.DEVICE_SILENT,
                severity=Severity.WARNING,
                **where,
                message_id=f"Perangkat {d.device_id} tidak mengirim data sejak {d.last_seen_at}",
                message_en=f"Device {d.device_id} silent since {d.last_seen_at}",
                since=d.last_seen_at,
            )
        )
    battery = d.battery_pct
    if battery is not None and battery < LOW_BATTERY_PCT:
        out.append(
            Alert(
                kind=AlertKind.LOW_BATTERY,
                severity=Severity.CRITICAL if battery < CRITICAL_BATTERY_PCT else Severity.INFO,
                **where,
                message_id=f"Baterai {d.device_id} tinggal {battery:.0f}%",
                message_en=f"Battery of {d.device_id} at {battery:.0f}%",
                since=d.last_seen_at,
            )
        )
    return out


@router.get("/alerts", summary="What needs attention now")
async def get_alerts(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> list[Alert]:
    """Alerts, most severe first: fire, full bins, silent devices, low battery, organic at landfill."""
    alerts: list[Alert] = []
    for b in await list_bins(conn, city_id=city.city_id, tz=city.tz, district=district):
        alerts += bin_alerts(b)
    for d in await list_devices(conn, city_id=city.city_id, tz=city.tz, district=district):
        alerts += device_alerts(d)
    today = datetime.now(city.tz).date()
    for load in await organic_at_landfill(conn, city_id=city.city_id, tz=city.tz, day=today):
        if district is not None and load.district_id != district:
            continue
        t = as_tonnes(load.kg)
        alerts.append(
            Alert(
                kind=AlertKind.ORGANIC_AT_LANDFILL,
                severity=Severity.CRITICAL,
                device_id=None,
                site_id=load.site_id,
                district_id=load.district_id,
                message_id=f"{t} t sampah organik masuk TPA hari ini",
                message_en=f"{t} t of organic waste reached the landfill today",
                since=local_midnight(today, city.tz).isoformat(),
            )
        )
    alerts.sort(key=lambda a: (RANK[a.severity], a.kind, a.device_id or a.site_id or ""))
    return alerts
