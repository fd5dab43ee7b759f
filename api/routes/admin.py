"""Administration (admin role): provision devices, edit sites and targets, quarantine review."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.deps import AdminKey, CityDep, Conn, SettingsDep
from api.errors import ERROR_RESPONSES
from api.params import MAX_YEAR, MIN_YEAR
from api.queries.device_status import local_iso
from api.queries.rows import fetch_all, fetch_one
from pisman import db, devices, targets
from pisman.contract import (
    EditedSite,
    ErrorAnswer,
    ProvisionedDevice,
    QuarantinedMessage,
    TargetAnswer,
)
from pisman.domain import ID_PATTERN, DeviceKind, QuarantineStatus, SiteType, TargetMetric
from pisman.settings import Settings

router = APIRouter(prefix="/v1", tags=["admin"], responses=ERROR_RESPONSES)
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorAnswer, "description": "The item exists or is in another state."}
}


class Body(BaseModel):
    """A request body: a field we do not know is a mistake to report (422), not to ignore."""

    model_config = ConfigDict(extra="forbid")


class DeviceIn(Body):
    """A device to provision."""

    device_id: str = Field(pattern=ID_PATTERN, examples=["bin-cicendo-001"])
    site_id: str = Field(pattern=ID_PATTERN, examples=["tps-cicendo-1"])
    kind: DeviceKind
    reporting_interval_s: int | None = Field(None, ge=1, le=86400 * 7)


@dataclass(frozen=True, slots=True)
class SiteCity:
    """The city a site belongs to."""

    city_id: str


def _provision(settings: Settings, body: DeviceIn, city_id: str) -> tuple[devices.Device, str]:
    with db.connect(settings.DATABASE_URL) as conn:
        with conn.cursor(row_factory=class_row(SiteCity)) as cur:
            site = cur.execute(
                "SELECT city_id FROM site WHERE site_id = %s", (body.site_id,)
            ).fetchone()
        if site is None or site.city_id != city_id:
            raise devices.RegistryError(f"no site {body.site_id!r} in city {city_id!r}")
        device, password = devices.add_device(
            conn,
            device_id=body.device_id,
            site_id=body.site_id,
            kind=body.kind,
            reporting_interval_s=body.reporting_interval_s,
        )
        devices.sync_broker_if_configured(conn, settings)
    return device, password


@router.post(
    "/devices",
    status_code=201,
    summary="Provision a device; the MQTT password is shown once",
    responses=CONFLICT,
)
async def provision_device(
    key: AdminKey, city: CityDep, settings: SettingsDep, body: DeviceIn
) -> ProvisionedDevice:
    """Register a device at a site of the city and return its MQTT credentials (stored hashed)."""
    try:
        device, password = await asyncio.to_thread(_provision, settings, body, city.city_id)
    except devices.RegistryError as exc:
        status = 409 if "already exists" in str(exc) else 422
        raise HTTPException(status, detail=str(exc)) from None
    return ProvisionedDevice(
        device_id=device.device_id,
        kind=DeviceKind(device.kind),
        site_id=device.site_id,
        city_id=device.city_id,
        reporting_interval_s=device.reporting_interval_s,
        mqtt_username=device.device_id,
        mqtt_password=password,
        topic=devices.device_topic(device.site_id, device.device_id, "<weighing|bin|status>"),
    )


class SitePatch(Body):
    """Fields of a site that may be edited (absent fields are left alone)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    active: bool | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    kelurahan: str | None = Field(None, max_length=100)
    rw: str | None = Field(None, max_length=20)
    capacity_t_per_day: Decimal | None = Field(None, ge=0, le=100000)


UPDATE_SITE = """
UPDATE site SET
  name = coalesce(%(name)s, name), active = coalesce(%(active)s, active),
  lat = coalesce(%(lat)s, lat), lon = coalesce(%(lon)s, lon),
  kelurahan = coalesce(%(kelurahan)s, kelurahan), rw = coalesce(%(rw)s, rw),
  capacity_t_per_day = coalesce(%(capacity_t_per_day)s, capacity_t_per_day), updated_at = now()
WHERE site_id = %(site_id)s AND city_id = %(city)s
RETURNING site_id, name, site_type, district_id, active, lat, lon, kelurahan, rw, capacity_t_per_day
"""


@dataclass(frozen=True, slots=True)
class EditedSiteRow:
    """The row UPDATE_SITE returns."""

    site_id: str
    name: str
    site_type: str
    district_id: str
    active: bool
    lat: float | None
    lon: float | None
    kelurahan: str | None
    rw: str | None
    capacity_t_per_day: Decimal | None


def _clean(text: str | None) -> str | None:
    if text is not None and "\x00" in text:
        raise HTTPException(422, detail="text fields must not contain NUL characters")
    return text


@router.patch("/sites/{site_id}", summary="Edit a site")
async def patch_site(
    conn: Conn,
    key: AdminKey,
    city: CityDep,
    site_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: SitePatch,
) -> EditedSite:
    """Change a site's name, active flag, position or capacity; 404 when unknown."""
    params = {**body.model_dump(), "site_id": site_id, "city": city.city_id}
    for k in ("name", "kelurahan", "rw"):
        params[k] = _clean(params[k])
    row = await fetch_one(conn, EditedSiteRow, UPDATE_SITE, params)
    if row is None:
        raise HTTPException(404, detail=f"no site {site_id!r} in city {city.city_id!r}")
    capacity = row.capacity_t_per_day
    return EditedSite(
        site_id=row.site_id,
        name=row.name,
        site_type=SiteType(row.site_type),
        district_id=row.district_id,
        active=row.active,
        lat=row.lat,
        lon=row.lon,
        kelurahan=row.kelurahan,
        rw=row.rw,
        capacity_t_per_day=float(capacity) if capacity is not None else None,
    )


def _year_in_range(value: date | None) -> date | None:
    if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return value


class TargetIn(Body):
    """A target value over a period, valid from a date (to a date, when given), with the document
    it comes from. A PUT replaces the whole target: an absent `valid_to` means open-ended."""

    value: Decimal = Field(ge=0, le=Decimal("1e12"), examples=[1500])
    period_days: int = Field(
        1, ge=1, le=3660, description="The period the value covers, in days (1: per day)."
    )
    valid_from: date = Field(date(2000, 1, 1))
    valid_to: date | None = Field(
        None, description="First day the target no longer applies (exclusive); none: open-ended."
    )
    source: str = Field(min_length=1, max_length=500, examples=["Perda 9/2018"])

    _years = field_validator("valid_from", "valid_to")(_year_in_range)

    @model_validator(mode="after")
    def _ends_after_start(self) -> TargetIn:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("'valid_to' must be after 'valid_from'")
        return self


def _target_answer(t: targets.StoredTarget) -> TargetAnswer:
    return TargetAnswer(
        metric=TargetMetric(t.metric),
        value=float(t.value),
        period_days=t.period_days,
        valid_from=t.valid_from.isoformat(),
        valid_to=t.valid_to.isoformat() if t.valid_to else None,
        source=t.source,
    )


@router.get("/targets", summary="The city's targets")
async def get_targets(conn: Conn, key: AdminKey, city: CityDep) -> list[TargetAnswer]:
    """Every target row of the city."""
    return [_target_answer(t) for t in await targets.list_targets(conn, city.city_id)]


@router.put("/targets/{metric}", summary="Set a target")
async def put_target(
    conn: Conn, key: AdminKey, city: CityDep, metric: TargetMetric, body: TargetIn
) -> TargetAnswer:
    """Create or replace the target of `metric` valid from `valid_from`."""
    spec = targets.TargetSpec(
        metric=metric,
        value=body.value,
        period=timedelta(days=body.period_days),
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        source=_clean(body.source) or "",
    )
    try:
        stored = await targets.upsert_target(conn, city.city_id, spec)
    except psycopg.errors.DataError as exc:
        raise HTTPException(422, detail=f"target rejected: {str(exc).splitlines()[0]}") from None
    return _target_answer(stored)


QUARANTINE_COLUMNS = """quarantine_id, received_at, topic, substring(payload FROM 1 FOR 4000) AS payload,
       reason, site_id, device_id, kind, status, resolved_at, resolution, payload_size, times_seen,
       last_seen_at"""
QUARANTINE = f"""
SELECT {QUARANTINE_COLUMNS}
FROM quarantine
WHERE (city_id = %(city)s OR city_id IS NULL) AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY received_at DESC, quarantine_id DESC
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A quarantined message as stored (the payload cut to its first 4,000 bytes)."""

    quarantine_id: int
    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    site_id: str | None
    device_id: str | None
    kind: str | None
    status: str
    resolved_at: datetime | None
    resolution: str | None
    payload_size: int  # of the original message; ingest keeps at most its first 64 KiB
    times_seen: int  # the same topic and bytes delivered again add to one row
    last_seen_at: datetime

    def answer(self, tz: ZoneInfo) -> QuarantinedMessage:
        """The row as the API shows it: local times, the payload as text."""
        return QuarantinedMessage(
            quarantine_id=self.quarantine_id,
            received_at=self.received_at.astimezone(tz).isoformat(),
            topic=self.topic,
            payload=bytes(self.payload)[:4000].decode("utf-8", errors="replace"),
            payload_bytes=self.payload_size,
            reason=self.reason,
            site_id=self.site_id,
            device_id=self.device_id,
            kind=self.kind,
            status=QuarantineStatus(self.status),
            resolved_at=local_iso(self.resolved_at, tz),
            resolution=self.resolution,
            times_seen=self.times_seen,
            last_seen_at=self.last_seen_at.astimezone(tz).isoformat(),
        )


@router.get("/quarantine", summary="Quarantined messages, newest first")
async def get_quarantine(
    conn: Conn,
    key: AdminKey,
    city: CityDep,
    status: Annotated[QuarantineStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[QuarantinedMessage]:
    """Messages ingest could not store, with the reason (also those whose topic names no known site)."""
    params = {"city": city.city_id, "status": status.value if status else None, "limit": limit}
    return [r.answer(city.tz) for r in await fetch_all(conn, QuarantineRow, QUARANTINE, params)]


REPROCESS = f"""
UPDATE quarantine SET status = 'retry', resolved_at = NULL, resolution = NULL
WHERE quarantine_id = %(id)s AND (city_id = %(city)s OR city_id IS NULL) AND status IN ('new', 'retry')
RETURNING {QUARANTINE_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class StatusRow:
    """A quarantined message's status."""

    status: str


QUARANTINE_STATUS = "SELECT status FROM quarantine WHERE quarantine_id = %(id)s AND (city_id = %(city)s OR city_id IS NULL)"


@router.post(
    "/quarantine/{quarantine_id}/reprocess",
    summary="Ask ingest to validate a quarantined message again",
    responses=CONFLICT,
)
async def reprocess(
    conn: Conn, key: AdminKey, city: CityDep, quarantine_id: Annotated[int, Path(ge=1, le=2**62)]
) -> QuarantinedMessage:
    """Sets status `retry`; the ingest service re-validates it and stores it or records the new reason."""
    params = {"id": quarantine_id, "city": city.city_id}
    row = await fetch_one(conn, QuarantineRow, REPROCESS, params)
    if row is None:
        existing = await fetch_one(conn, StatusRow, QUARANTINE_STATUS, params)
        if existing is None:
            raise HTTPException(404, detail=f"no quarantined message {quarantine_id}")
        raise HTTPException(
            409,
            detail=f"message {quarantine_id} is already {existing.status}; only new messages can be retried",
        )
    return row.answer(city.tz)
