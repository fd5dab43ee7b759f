"""Administration (admin role): provision devices, edit sites and targets, quarantine review."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import AdminKey, CityDep, Conn, SettingsDep
from api.params import ID_PATTERN, MAX_YEAR, MIN_YEAR
from pisman import db, devices
from pisman.domain import TargetMetric
from pisman.settings import Settings

router = APIRouter(prefix="/v1", tags=["admin"])


class Body(BaseModel):
    """A request body: a field we do not know is a mistake to report (422), not to ignore."""

    model_config = ConfigDict(extra="forbid")


class DeviceIn(Body):
    """A device to provision."""

    device_id: str = Field(pattern=ID_PATTERN, examples=["bin-cicendo-001"])
    site_id: str = Field(pattern=ID_PATTERN, examples=["tps-cicendo-1"])
    kind: Literal["weighbridge", "platform_scale", "bin_sensor"]
    reporting_interval_s: int | None = Field(None, ge=1, le=86400 * 7)


def _provision(settings: Settings, body: DeviceIn, city_id: str) -> tuple[devices.Device, str]:
    with db.connect(settings.DATABASE_URL) as conn:
        site = conn.execute(
            "SELECT city_id FROM site WHERE site_id = %s", (body.site_id,)
        ).fetchone()
        if site is None or site[0] != city_id:
            raise devices.RegistryError(f"no site {body.site_id!r} in city {city_id!r}")
        device, password = devices.add_device(
            conn,
            device_id=body.device_id,
            site_id=body.site_id,
            kind=body.kind,
            reporting_interval_s=body.reporting_interval_s,
        )
        if settings.MOSQUITTO_PASSWORD_FILE and settings.MOSQUITTO_ACL_FILE:
            devices.write_broker_files(
                conn,
                password_file=settings.MOSQUITTO_PASSWORD_FILE,
                acl_file=settings.MOSQUITTO_ACL_FILE,
                pid_file=settings.MOSQUITTO_PID_FILE,
            )
    return device, password


@router.post(
    "/devices", status_code=201, summary="Provision a device; the MQTT password is shown once"
)
async def provision_device(
    key: AdminKey, city: CityDep, settings: SettingsDep, body: DeviceIn
) -> dict[str, Any]:
    """Register a device at a site of the city and return its MQTT credentials (stored hashed)."""
    try:
        device, password = await asyncio.to_thread(_provision, settings, body, city.city_id)
    except devices.RegistryError as exc:
        status = 409 if "already exists" in str(exc) else 422
        raise HTTPException(status, detail=str(exc)) from None
    return {
        "device_id": device.device_id,
        "kind": device.kind,
        "site_id": device.site_id,
        "city_id": device.city_id,
        "reporting_interval_s": device.reporting_interval_s,
        "mqtt_username": device.device_id,
        "mqtt_password": password,
        "topic": devices.device_topic(device.site_id, device.device_id, "<weighing|bin|status>"),
    }


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
) -> dict[str, Any]:
    """Change a site's name, active flag, position or capacity; 404 when unknown."""
    params = {**body.model_dump(), "site_id": site_id, "city": city.city_id}
    for k in ("name", "kelurahan", "rw"):
        params[k] = _clean(params[k])
    row = await (await conn.execute(UPDATE_SITE, params)).fetchone()
    if row is None:
        raise HTTPException(404, detail=f"no site {site_id!r} in city {city.city_id!r}")
    cols = (
        "site_id",
        "name",
        "site_type",
        "district_id",
        "active",
        "lat",
        "lon",
        "kelurahan",
        "rw",
        "capacity_t_per_day",
    )
    out = dict(zip(cols, row, strict=True))
    out["capacity_t_per_day"] = (
        float(out["capacity_t_per_day"]) if out["capacity_t_per_day"] is not None else None
    )
    return out


class TargetIn(Body):
    """A target value over a period, valid from a date, with the document it comes from."""

    value: Decimal = Field(ge=0, le=Decimal("1e12"), examples=[1500])
    period_days: int = Field(
        1, ge=1, le=3660, description="The period the value covers, in days (1: per day)."
    )
    valid_from: date = Field(date(2000, 1, 1))
    source: str = Field(min_length=1, max_length=500, examples=["Perda 9/2018"])

    @field_validator("valid_from")
    @classmethod
    def _valid_from_in_range(cls, value: date) -> date:
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
        return value


UPSERT_TARGET = """
INSERT INTO target (city_id, metric, period, value, valid_from, source)
VALUES (%(city)s, %(metric)s, %(period)s, %(value)s, %(valid_from)s, %(source)s)
ON CONFLICT (city_id, metric, valid_from) DO UPDATE
  SET period = EXCLUDED.period, value = EXCLUDED.value, source = EXCLUDED.source
RETURNING metric, value, (extract(epoch FROM period) / 86400)::int, valid_from, valid_to, source
"""
LIST_TARGETS = """
SELECT metric, value, (extract(epoch FROM period) / 86400)::int, valid_from, valid_to, source
FROM target WHERE city_id = %s ORDER BY metric, valid_from
"""


def _target_item(r: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "metric": r[0],
        "value": float(r[1]),
        "period_days": r[2],
        "valid_from": r[3].isoformat(),
        "valid_to": r[4].isoformat() if r[4] else None,
        "source": r[5],
    }


@router.get("/targets", summary="The city's targets")
async def get_targets(conn: Conn, key: AdminKey, city: CityDep) -> list[dict[str, Any]]:
    """Every target row of the city."""
    return [
        _target_item(r)
        for r in await (await conn.execute(LIST_TARGETS, (city.city_id,))).fetchall()
    ]


@router.put("/targets/{metric}", summary="Set a target")
async def put_target(
    conn: Conn, key: AdminKey, city: CityDep, metric: TargetMetric, body: TargetIn
) -> dict[str, Any]:
    """Create or replace the target of `metric` valid from `valid_from`."""
    params = {
        "city": city.city_id,
        "metric": metric.value,
        "period": timedelta(days=body.period_days),
        "value": body.value,
        "valid_from": body.valid_from,
        "source": _clean(body.source),
    }
    try:
        row = await (await conn.execute(UPSERT_TARGET, params)).fetchone()
    except psycopg.errors.DataError as exc:
        raise HTTPException(422, detail=f"target rejected: {str(exc).splitlines()[0]}") from None
    assert row is not None
    return _target_item(row)


QUARANTINE = """
SELECT quarantine_id, received_at, topic, substring(payload FROM 1 FOR 4000), reason, site_id, device_id, kind,
       status, resolved_at, resolution, payload_size, times_seen, last_seen_at
FROM quarantine
WHERE (city_id = %(city)s OR city_id IS NULL) AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY received_at DESC, quarantine_id DESC
LIMIT %(limit)s
"""


def _quarantine_item(r: tuple[Any, ...], tz: Any) -> dict[str, Any]:
    payload = bytes(r[3])
    return {
        "quarantine_id": r[0],
        "received_at": r[1].astimezone(tz).isoformat(),
        "topic": r[2],
        "payload": payload[:4000].decode("utf-8", errors="replace"),
        "payload_bytes": r[11],  # of the original message; ingest keeps at most its first 64 KiB
        "reason": r[4],
        "site_id": r[5],
        "device_id": r[6],
        "kind": r[7],
        "status": r[8],
        "resolved_at": r[9].astimezone(tz).isoformat() if r[9] else None,
        "resolution": r[10],
        "times_seen": r[12],  # the same topic and bytes delivered again add to one row
        "last_seen_at": r[13].astimezone(tz).isoformat(),
    }


@router.get("/quarantine", summary="Quarantined messages, newest first")
async def get_quarantine(
    conn: Conn,
    key: AdminKey,
    city: CityDep,
    status: Annotated[Literal["new", "retry", "reprocessed", "discarded"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Messages ingest could not store, with the reason (also those whose topic names no known site)."""
    rows = await (
        await conn.execute(QUARANTINE, {"city": city.city_id, "status": status, "limit": limit})
    ).fetchall()
    return [_quarantine_item(r, city.tz) for r in rows]


REPROCESS = """
UPDATE quarantine SET status = 'retry', resolved_at = NULL, resolution = NULL
WHERE quarantine_id = %(id)s AND (city_id = %(city)s OR city_id IS NULL) AND status IN ('new', 'retry')
RETURNING quarantine_id, received_at, topic, substring(payload FROM 1 FOR 4000), reason, site_id, device_id, kind,
          status, resolved_at, resolution, payload_size, times_seen, last_seen_at
"""
QUARANTINE_STATUS = "SELECT status FROM quarantine WHERE quarantine_id = %(id)s AND (city_id = %(city)s OR city_id IS NULL)"


@router.post(
    "/quarantine/{quarantine_id}/reprocess",
    summary="Ask ingest to validate a quarantined message again",
)
async def reprocess(
    conn: Conn, key: AdminKey, city: CityDep, quarantine_id: Annotated[int, Path(ge=1, le=2**62)]
) -> dict[str, Any]:
    """Sets status `retry`; the ingest service re-validates it and stores it or records the new reason."""
    row = await (
        await conn.execute(REPROCESS, {"id": quarantine_id, "city": city.city_id})
    ).fetchone()
    if row is None:
        existing = await (
            await conn.execute(QUARANTINE_STATUS, {"id": quarantine_id, "city": city.city_id})
        ).fetchone()
        if existing is None:
            raise HTTPException(404, detail=f"no quarantined message {quarantine_id}")
        raise HTTPException(
            409,
            detail=f"message {quarantine_id} is already {existing[0]}; only new messages can be retried",
        )
    return _quarantine_item(row, city.tz)
