"""GET /v1/alerts: fires, tipped bins, open lids, full bins, silent devices, low batteries, organic
waste at the landfill; POST /v1/alerts/{alert_id}/ack: who saw one and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import Caller, City, CityDep, Conn, ViewerKey
from api.errors import ERROR_RESPONSES
from api.params import local_midnight
from api.queries import alert_acks
from api.queries.alert_acks import ALERT_ID_PATTERN, AckRow
from api.queries.alert_onsets import CRITICAL_BATTERY_PCT, LOW_BATTERY_PCT, Onsets, bin_onsets
from api.queries.bins import list_bins
from api.queries.device_status import list_devices, local_iso
from api.queries.organic_at_landfill import organic_at_landfill
from api.queries.tonnage import as_tonnes
from pisman.contract import Alert, AlertAck, Bin, Device, ErrorAnswer
from pisman.domain import ID_PATTERN, AlertKind, DeviceKind, DeviceStatus, Severity

router = APIRouter(prefix="/v1", tags=["alerts"], responses=ERROR_RESPONSES)
RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
NOTE_MAX = 500


@dataclass(frozen=True, slots=True)
class Found:
    """An alert before its id and acknowledgement are attached."""

    kind: AlertKind
    severity: Severity
    device_id: str | None
    site_id: str | None
    district_id: str | None
    message_id: str
    message_en: str
    started: datetime | None

    @property
    def subject(self) -> str:
        """What the alert is about: the device, else the site."""
        return self.device_id or self.site_id or "unknown"


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


def bin_alerts(b: Bin, onsets: Onsets | None) -> list[Found]:
    """A fire, a tipped bin, an open lid, and a bin at or above its threshold.

    Each alert starts at the first reading of the condition's current run (alert_onsets.py),
    so its id stays while the condition lasts; the newest reading when no run start is known.
    """
    out = []
    where = {"device_id": b.device_id, "site_id": b.site_id, "district_id": b.district_id}
    newest = _parse(b.reading_ts)

    def start(since: datetime | None) -> datetime | None:
        return since or newest

    if b.fire:
        out.append(
            Found(
                AlertKind.FIRE,
                Severity.CRITICAL,
                **where,
                message_id=f"Api terdeteksi di {b.site_name} ({b.device_id})",
                message_en=f"Fire detected at {b.site_name} ({b.device_id})",
                started=start(onsets.fire_since if onsets else None),
            )
        )
    if b.tilt:
        out.append(
            Found(
                AlertKind.TILT,
                Severity.WARNING,
                **where,
                message_id=f"Kontainer {b.device_id} di {b.site_name} terguling",
                message_en=f"Bin {b.device_id} at {b.site_name} has tipped over",
                started=start(onsets.tilt_since if onsets else None),
            )
        )
    if b.lid_open:
        out.append(
            Found(
                AlertKind.LID_OPEN,
                Severity.INFO,
                **where,
                message_id=f"Tutup kontainer {b.device_id} di {b.site_name} terbuka",
                message_en=f"The lid of bin {b.device_id} at {b.site_name} is open",
                started=start(onsets.lid_open_since if onsets else None),
            )
        )
    if b.needs_collection:
        out.append(
            Found(
                AlertKind.BIN_FULL,
                Severity.WARNING,
                **where,
                message_id=f"Kontainer {b.device_id} terisi {b.fill_pct}% — perlu diangkut",
                message_en=f"Bin {b.device_id} is {b.fill_pct}% full — needs collection",
                started=start(onsets.full_since if onsets else None),
            )
        )
    return out


def device_alerts(d: Device, onsets: Onsets | None) -> list[Found]:
    """A device gone silent (since it was last heard), and a battery running low (since its
    readings went below the level: critical below 5 % is an occurrence of its own)."""
    out = []
    where = {"device_id": d.device_id, "site_id": d.site_id, "district_id": d.district_id}
    last_seen = _parse(d.last_seen_at)
    if d.status == DeviceStatus.OFFLINE:
        out.append(
            Found(
                AlertKind.DEVICE_SILENT,
                Severity.WARNING,
                **where,
                message_id=f"Perangkat {d.device_id} tidak mengirim data sejak {d.last_seen_at}",
                message_en=f"Device {d.device_id} silent since {d.last_seen_at}",
                started=last_seen,
            )
        )
    battery = d.battery_pct
    if battery is not None and battery < LOW_BATTERY_PCT:
        critical = battery < CRITICAL_BATTERY_PCT
        since = None
        if onsets is not None:
            since = onsets.battery_critical_since if critical else onsets.battery_low_since
        out.append(
            Found(
                AlertKind.LOW_BATTERY,
                Severity.CRITICAL if critical else Severity.INFO,
                **where,
                message_id=f"Baterai {d.device_id} tinggal {battery:.0f}%",
                message_en=f"Battery of {d.device_id} at {battery:.0f}%",
                started=since or last_seen,
            )
        )
    return out


def _order(a: Alert) -> tuple[int, int, float, str, str]:
    """Most severe first; among the critical ones a fire first; then newest first."""
    started = _parse(a.since)
    return (
        RANK[a.severity],
        0 if a.kind == AlertKind.FIRE else 1,
        -started.timestamp() if started else float("inf"),
        a.kind,
        a.device_id or a.site_id or "",
    )


def _ongoing(bins: list[Bin], devices: list[Device]) -> dict[str, set[str]]:
    """Which conditions hold now, by bin (alert_onsets.CONDITIONS): those whose onset is asked."""
    ongoing: dict[str, set[str]] = {}
    for b in bins:
        flags = {"fire": b.fire, "tilt": b.tilt, "lid_open": b.lid_open, "full": b.needs_collection}
        ongoing.setdefault(b.device_id, set()).update(k for k, on in flags.items() if on)
    for d in devices:
        battery = d.battery_pct
        if d.kind == DeviceKind.BIN_SENSOR and battery is not None and battery < LOW_BATTERY_PCT:
            critical = battery < CRITICAL_BATTERY_PCT
            ongoing.setdefault(d.device_id, set()).add(
                "battery_critical" if critical else "battery_low"
            )
    return ongoing


async def current_alerts(
    conn: psycopg.AsyncConnection[Any], city: City, district: str | None
) -> list[Alert]:
    """The city's alerts now, each with its occurrence id and acknowledgement, in order."""
    bins = await list_bins(conn, city_id=city.city_id, tz=city.tz, district=district)
    devices = await list_devices(conn, city_id=city.city_id, tz=city.tz, district=district)
    onsets = await bin_onsets(conn, city_id=city.city_id, ongoing=_ongoing(bins, devices))
    found: list[Found] = []
    for b in bins:
        found += bin_alerts(b, onsets.get(b.device_id))
    for d in devices:
        found += device_alerts(d, onsets.get(d.device_id))
    today = datetime.now(city.tz).date()
    for load in await organic_at_landfill(conn, city_id=city.city_id, tz=city.tz, day=today):
        if district is not None and load.district_id != district:
            continue
        t = as_tonnes(load.kg)
        found.append(
            Found(
                AlertKind.ORGANIC_AT_LANDFILL,
                Severity.CRITICAL,
                device_id=None,
                site_id=load.site_id,
                district_id=load.district_id,
                message_id=f"{t} t sampah organik masuk TPA hari ini",
                message_en=f"{t} t of organic waste reached the landfill today",
                started=local_midnight(today, city.tz),
            )
        )
    ids = [alert_acks.alert_id(city.city_id, f.kind.value, f.subject, f.started) for f in found]
    acks = await alert_acks.acks_for(conn, city_id=city.city_id, alert_ids=ids)
    alerts = [_answer(f, i, acks.get(i), city) for f, i in zip(found, ids, strict=True)]
    alerts.sort(key=_order)
    return alerts


def _answer(f: Found, id_: str, ack: AckRow | None, city: City) -> Alert:
    return Alert(
        kind=f.kind,
        severity=f.severity,
        device_id=f.device_id,
        site_id=f.site_id,
        district_id=f.district_id,
        message_id=f.message_id,
        message_en=f.message_en,
        since=local_iso(f.started, city.tz),
        alert_id=id_,
        acknowledged_by=ack.acknowledged_by if ack else None,
        acknowledged_by_name=ack.acknowledged_by_name if ack else None,
        acknowledged_at=local_iso(ack.acknowledged_at, city.tz) if ack else None,
        ack_note=ack.note if ack else None,
    )


@router.get("/alerts", summary="What needs attention now")
async def get_alerts(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    acknowledged: Annotated[
        bool | None,
        Query(description="false: only alerts nobody acknowledged yet; true: only acknowledged."),
    ] = None,
) -> list[Alert]:
    """Alerts, most severe first (a fire before other critical alerts), then newest first."""
    alerts = await current_alerts(conn, city, district)
    if acknowledged is not None:
        alerts = [a for a in alerts if (a.acknowledged_at is not None) == acknowledged]
    return alerts


class AckIn(BaseModel):
    """An acknowledgement's optional note (what was done)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=NOTE_MAX, examples=["Petugas damkar dikirim"])

    @field_validator("note")
    @classmethod
    def printable(cls, value: str | None) -> str | None:
        """Text a person can read: no control characters but line breaks and tabs."""
        if value is None:
            return None
        if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):  # not storable as UTF-8
            raise ValueError("must be valid Unicode text (a lone surrogate was sent)")
        return value.strip() or None


def _who(key: Caller) -> tuple[str, str]:
    """The acknowledger: a user's username and display name, or an API key's label."""
    if key.username:
        return key.username, key.display_name or key.username
    return key.label, key.label


@router.post(
    "/alerts/{alert_id}/ack",
    summary="Acknowledge an alert (viewer and above)",
    responses={
        404: {
            "model": ErrorAnswer,
            "description": "No such alert now in this city (it may have ended).",
        }
    },
)
async def acknowledge_alert(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    alert_id: Annotated[
        str,
        Path(
            pattern=ALERT_ID_PATTERN,
            max_length=200,
            description="The alert_id of a current alert (GET /v1/alerts).",
        ),
    ],
    body: AckIn | None = None,
) -> AlertAck:
    """Keep who acknowledged this occurrence and when; again: the first acknowledgement stands."""
    named = alert_acks.alert_city(alert_id)
    if named != city.city_id:
        if named is not None and not key.allows_city(named):
            raise HTTPException(403, detail=f"{key.label} may not act on city {named!r}")
        raise HTTPException(
            404,
            detail=(
                f"Peringatan {alert_id!r} bukan milik kota {city.city_id!r} / alert {alert_id!r}"
                f" is not an alert of city {city.city_id!r} (ask with ?city={named})"
            ),
        )
    current = {a.alert_id: a for a in await current_alerts(conn, city, None)}
    alert = current.get(alert_id)
    if alert is None:
        raise HTTPException(
            404,
            detail=(
                f"Tidak ada peringatan aktif {alert_id!r} (mungkin sudah selesai) / no current"
                f" alert {alert_id!r} in city {city.city_id!r}: it may have ended; a new"
                " occurrence has a new id (GET /v1/alerts)"
            ),
        )
    by, name = _who(key)
    row, again = await alert_acks.acknowledge(
        conn,
        city_id=city.city_id,
        alert_id=alert_id,
        kind=alert.kind.value,
        by=by,
        by_name=name,
        note=body.note if body else None,
    )
    acknowledged_at = local_iso(row.acknowledged_at, city.tz)
    assert acknowledged_at is not None
    return AlertAck(
        alert_id=row.alert_id,
        kind=AlertKind(row.kind),
        acknowledged_by=row.acknowledged_by,
        acknowledged_by_name=row.acknowledged_by_name,
        acknowledged_at=acknowledged_at,
        note=row.note,
        already_acknowledged=again,
    )
