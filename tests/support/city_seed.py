"""The one place tests (and the API benchmarks) seed a city straight into the database: its row,
districts, sites, devices and targets. The test worlds (api_seed.seed_city: Apitown;
ingest_world.seed_city: one site of each type with broker accounts; bench/api/load.seed_city:
Bandung's scale) only say what their city holds and call insert_city."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import psycopg

from pisman import devices
from pisman.domain import DeviceKind

# A device without a broker account gets this hash: nothing a client sends matches it.
NO_ACCOUNT_HASH = "x"

# metric, period in days, value: the national targets every seeded city carries.
TARGETS: tuple[tuple[str, int, str], ...] = (
    ("generation_t", 1, "1500"),
    ("reduce_t", 1, "450"),
    ("utilize_t", 1, "60"),
    ("residual_t", 1, "981"),
    ("separate_share", 1, "0.4"),
    ("landfill_quota_t", 14, "13738"),
    ("kbs_rw", 365, "700"),
    ("reduction_share", 1, "0.3"),
    ("handling_share", 1, "0.7"),
)


@dataclass(frozen=True, slots=True)
class SiteRow:
    """A site to seed; name defaults to the site id."""

    site_id: str
    district_id: str
    site_type: str
    process_kind: str | None = None
    name: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device to seed: with a password it gets a broker account (hashed as `pisman devices
    add` does); without, a hash no password matches. The interval defaults by kind."""

    device_id: str
    site_id: str
    kind: str
    password: str | None = None
    reporting_interval_s: int | None = None


def insert_city(
    conn: psycopg.Connection,
    city_id: str,
    *,
    name: str | None = None,
    province: str | None = None,
    timezone: str = "Asia/Jakarta",
    districts: Sequence[tuple[str, str]] = (),
    sites: Sequence[SiteRow] = (),
    devices_: Sequence[DeviceRow] = (),
    targets: Sequence[tuple[str, int, str]] = (),
    targets_source: str = "test",
) -> None:
    """Insert the city (kept if it exists), its districts (kept if they exist), sites, devices
    and targets, in the caller's transaction."""
    conn.execute(
        "INSERT INTO city (city_id, name, province, timezone) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (city_id, name or city_id, province, timezone),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO district (city_id, district_id, name) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(city_id, did, dname) for did, dname in districts],
        )
        cur.executemany(
            "INSERT INTO site (site_id, city_id, district_id, name, site_type, process_kind, lat, lon)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    s.site_id,
                    city_id,
                    s.district_id,
                    s.name or s.site_id,
                    s.site_type,
                    s.process_kind,
                    s.lat,
                    s.lon,
                )
                for s in sites
            ],
        )
        cur.executemany(
            "INSERT INTO device (device_id, city_id, site_id, kind, password_hash, reporting_interval_s)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (
                    d.device_id,
                    city_id,
                    d.site_id,
                    d.kind,
                    NO_ACCOUNT_HASH,
                    d.reporting_interval_s
                    or devices.DEFAULT_REPORTING_INTERVAL_S[DeviceKind(d.kind)],
                )
                for d in devices_
                if d.password is None
            ],
        )
        cur.executemany(
            "INSERT INTO target (city_id, metric, period, value, source) VALUES (%s, %s, %s, %s, %s)",
            [
                (city_id, metric, timedelta(days=days), Decimal(value), targets_source)
                for metric, days, value in targets
            ],
        )
    for d in devices_:
        if d.password is not None:
            devices.add_device(
                conn,
                device_id=d.device_id,
                site_id=d.site_id,
                kind=d.kind,
                password=d.password,
                reporting_interval_s=d.reporting_interval_s,
            )
