"""Seeding helpers for the API tests: a small city (apitown), raw weighings and bin readings,
rollups refreshed, and an API client with a key of a given role."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from api.app import create_app
from pisman import keys, rollups
from tests.support.city_seed import TARGETS, DeviceRow, SiteRow, insert_city

CITY = "apitown"
DISTRICTS = [("coblong", "Coblong"), ("sukajadi", "Sukajadi"), ("cicendo", "Cicendo")]
# site_id, district, site_type, process_kind
SITES = [
    ("bank-coblong", "coblong", "waste_bank", None),
    ("bank-sukajadi", "sukajadi", "waste_bank", None),
    ("bank-hub", "cicendo", "waste_bank_hub", None),
    ("tps-coblong", "coblong", "depot", None),
    ("tps-cicendo", "cicendo", "depot", None),
    ("tps3r-compost", "sukajadi", "processing", "compost"),
    ("tpst-recycle", "cicendo", "processing", "recycling"),
    ("tpa-gate", "cicendo", "landfill", None),
]
# site_type -> (stream, materials, kg range) of plausible weighings
FLOWS: dict[str, list[tuple[str, list[str], tuple[int, int]]]] = {
    "waste_bank": [("deposit", ["plastic", "paper", "metal", "glass"], (1, 40))],
    "waste_bank_hub": [("deposit", ["plastic", "paper"], (5, 200))],
    "depot": [
        ("separated", ["food", "plastic", "residual"], (50, 900)),
        ("mixed", ["mixed"], (200, 2000)),
    ],
    "processing": [
        ("to_processing", ["food", "plastic"], (100, 3000)),
        ("processed_output", ["food"], (50, 500)),
        ("to_landfill", ["residual"], (20, 400)),
    ],
    "landfill": [("to_landfill", ["mixed", "residual", "food"], (3000, 9000))],
}


def seed_city(conn: psycopg.Connection, *, bins: int = 3) -> None:
    """Districts, sites (every type), one scale per site, a few bins, targets, two KBS neighbourhoods."""
    scales = [
        DeviceRow(
            f"scale-{sid}",
            sid,
            "weighbridge" if stype in ("landfill", "processing") else "platform_scale",
        )
        for sid, _, stype, _ in SITES
    ]
    bin_sensors = [
        DeviceRow(f"bin-{b:03d}", ("tps-coblong", "tps-cicendo")[b % 2], "bin_sensor")
        for b in range(bins)
    ]
    insert_city(
        conn,
        CITY,
        name="Apitown",
        province="Jawa Barat",
        districts=DISTRICTS,
        sites=[
            SiteRow(
                sid,
                did,
                stype,
                pk,
                name=sid.replace("-", " ").title(),
                lat=-6.9 + i * 0.01,
                lon=107.6 + i * 0.01,
            )
            for i, (sid, did, stype, pk) in enumerate(SITES)
        ],
        devices_=[*scales, *bin_sensors],
        targets=TARGETS,
    )
    conn.execute(
        "INSERT INTO neighbourhood VALUES (%s, 'coblong', 'dago', '01', 300, 120, '2025-01-01'),"
        " (%s, 'coblong', 'dago', '02', 300, 20, NULL)",
        (CITY, CITY),
    )


@dataclass(frozen=True, slots=True)
class Weighing:
    """A raw weighing row as the test published it."""

    ts: datetime
    site_id: str
    seq: int
    net_kg: Decimal
    material: str
    stream: str
    from_own_site: bool = False
    price_per_kg: Decimal | None = None
    manual: bool = False


INSERT_WEIGHING = """
INSERT INTO weighing (ts, city_id, site_id, device_id, seq, net_kg, material, stream, from_own_site, price_per_kg, manual)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def insert_raw_weighings(conn: psycopg.Connection, rows: Iterable[Weighing]) -> None:
    """Insert raw weighings only (no rollup touched), in the caller's transaction."""
    with conn.cursor() as cur:
        cur.executemany(
            INSERT_WEIGHING,
            [
                (
                    w.ts,
                    CITY,
                    w.site_id,
                    f"scale-{w.site_id}",
                    w.seq,
                    w.net_kg,
                    w.material,
                    w.stream,
                    w.from_own_site,
                    w.price_per_kg,
                    w.manual,
                )
                for w in rows
            ],
        )


def insert_weighings(conn: psycopg.Connection, rows: Iterable[Weighing]) -> None:
    """Insert raw weighings and refresh the rollups of the touched (site, hour) buckets, as ingest does."""
    rows = list(rows)
    insert_raw_weighings(conn, rows)
    touched = sorted({(w.site_id, w.ts.replace(minute=0, second=0, microsecond=0)) for w in rows})
    conn.execute(
        "SELECT pisman_refresh_weighing_rollups(%s, %s)",
        ([t[0] for t in touched], [t[1] for t in touched]),
    )
    conn.commit()
    if rows and rollups.uses_timescaledb(conn):  # rows below a materialised range: as ingest does
        rollups.refresh_late_rows(conn, min(w.ts for w in rows), max(w.ts for w in rows))


def insert_bin_reading(
    conn: psycopg.Connection,
    device_id: str,
    ts: datetime,
    fill_ratio: float,
    *,
    battery_pct: float = 90,
    fire: bool = False,
    seq: int = 1,
    last_seen: datetime | None = None,
) -> None:
    """One bin reading plus the device_state ingest would keep, and its hourly rollup."""
    site = conn.execute("SELECT site_id FROM device WHERE device_id = %s", (device_id,)).fetchone()
    assert site is not None
    conn.execute(
        "INSERT INTO bin_reading (ts, city_id, site_id, device_id, seq, fill_ratio, battery_pct, fire)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (ts, CITY, site[0], device_id, seq, fill_ratio, battery_pct, fire),
    )
    conn.execute(
        "INSERT INTO device_state (device_id, city_id, last_seen_at, last_reading_ts, last_seq, connection, battery_pct, fill_ratio)"
        " VALUES (%s, %s, %s, %s, %s, 'online', %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
        " last_seen_at = EXCLUDED.last_seen_at, last_reading_ts = EXCLUDED.last_reading_ts,"
        " battery_pct = EXCLUDED.battery_pct, fill_ratio = EXCLUDED.fill_ratio",
        (device_id, CITY, last_seen or ts, ts, seq, battery_pct, fill_ratio),
    )
    conn.execute("SELECT pisman_refresh_bin_rollups(%s, %s)", ([device_id], [ts]))
    conn.commit()
    if rollups.uses_timescaledb(conn):
        rollups.refresh_late_rows(conn, ts, ts)


def random_weighings(
    rng: random.Random, start: datetime, hours: int, per_hour: int, seq0: int = 0
) -> list[Weighing]:
    """Plausible weighings at every site type; some exactly on, just before and just after 17:00 UTC."""
    out: list[Weighing] = []
    seq = seq0
    for h in range(hours):
        hour = start + timedelta(hours=h)
        for _ in range(per_hour):
            sid, _, stype, _ = rng.choice(SITES)
            stream, materials, (lo, hi) = rng.choice(FLOWS[stype])
            minute = rng.choice([0, 0, 59, rng.randrange(60)])
            second = rng.choice([0, 59, rng.randrange(60)])
            seq += 1
            price = Decimal(rng.randrange(500, 5000)) if stype.startswith("waste_bank") else None
            out.append(
                Weighing(
                    hour + timedelta(minutes=minute, seconds=second),
                    sid,
                    seq,
                    Decimal(rng.randrange(lo * 1000, hi * 1000)) / 1000,
                    rng.choice(materials),
                    stream,
                    from_own_site=stype == "waste_bank_hub" and rng.random() < 0.5,
                    price_per_kg=price,
                    manual=rng.random() < 0.05,
                )
            )
    return out


@contextmanager
def api_client(
    db_url: str, monkeypatch: pytest.MonkeyPatch, *, role: str = "admin"
) -> Iterator[tuple[Any, str]]:
    """A TestClient (lifespan on) against the database, and a key of the given role."""
    from fastapi.testclient import TestClient

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("PISMAN_CITY", CITY)
    monkeypatch.setenv("MQTT_URL", "mqtt://127.0.0.1:1")
    from pisman.settings import get_settings

    get_settings.cache_clear()
    with psycopg.connect(db_url) as conn:
        key = keys.create_key(conn, role=role, name=f"test-{role}")
    with TestClient(create_app()) as client:
        client.headers["X-API-Key"] = key
        yield client, key
