"""District views book a landfill load to its origin site's district; equal to sums over raw rows."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from pisman.rollups import bring_rollups_up_to_date, uses_timescaledb
from tests.support.api_seed import (
    SITES,
    Weighing,
    api_client,
    insert_weighings,
    random_weighings,
    seed_city,
)

SITE_TYPE = {s[0]: s[2] for s in SITES}
SITE_DISTRICT = {s[0]: s[1] for s in SITES}
GATE = "tpa-gate"  # in cicendo
START = datetime.fromisoformat("2026-02-26T12:00:00+00:00")
DAYS = {"from": "2026-02-27", "to": "2026-03-03"}
MONTHS = {"from": "2026-02-01", "to": "2026-04-01"}
OTHER_CITY_DEPOT = "tps-othertown"  # a depot of another city: its loads count as unknown origin


def _load(ts: str, seq: int, kg: str, origin: str | None) -> tuple[Weighing, str | None]:
    """A gate load; from_own_site as ingest sets it (the origin is one of this city's sites)."""
    own = origin in SITE_DISTRICT
    w = Weighing(datetime.fromisoformat(ts), GATE, seq, Decimal(kg), "mixed", "to_landfill", own)
    return w, origin


# (load, origin_site_id): two origin districts, unknown, another city's depot, a site that does not exist.
LOADS: list[tuple[Weighing, str | None]] = [
    _load("2026-02-27T02:00:00+00:00", 70001, "6100.5", "tps-coblong"),
    _load("2026-02-28T16:59:59+00:00", 70002, "5200.25", "tps-coblong"),
    _load("2026-02-28T17:00:00+00:00", 70003, "4300.125", "tps3r-compost"),
    _load("2026-03-01T09:30:00+00:00", 70004, "7400", None),
    _load("2026-03-02T04:00:00+00:00", 70005, "3900.75", OTHER_CITY_DEPOT),
    _load("2026-03-02T05:00:00+00:00", 70006, "2800.5", "no-such-site"),
]


def fate_kg(w: Weighing) -> Decimal:
    """Signed fate kilograms of a raw row (DOMAIN.md's rules restated, as in test_api_tonnage)."""
    stype = SITE_TYPE[w.site_id]
    if stype in ("waste_bank", "waste_bank_hub") and w.stream == "deposit" and not w.from_own_site:
        return w.net_kg
    if stype == "processing" and w.stream == "to_processing":
        return w.net_kg
    if stype == "processing" and w.stream == "to_landfill":
        return -w.net_kg
    if stype == "landfill" and w.stream == "to_landfill":
        return w.net_kg
    return Decimal(0)


def booked_district(w: Weighing, origins: dict[tuple[str, int], str | None]) -> str:
    """The district a district view books a row to: a landfill load's known origin, else its site."""
    origin = origins.get((w.site_id, w.seq))
    if SITE_TYPE[w.site_id] == "landfill" and origin in SITE_DISTRICT:
        return SITE_DISTRICT[origin]
    return SITE_DISTRICT[w.site_id]


def expected(
    rows: list[Weighing], origins: dict[tuple[str, int], str | None], bucket: str, lo: str, hi: str
) -> dict[tuple[str, str], float]:
    """Tonnes per (local bucket start date, district) from raw rows."""
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for w in rows:
        day = (w.ts + timedelta(hours=7)).date()  # WIB
        if not (lo <= day.isoformat() < hi):
            continue
        start = day if bucket == "day" else day.replace(day=1)
        sums[(start.isoformat(), booked_district(w, origins))] += fate_kg(w)
    return {k: float(v / 1000) for k, v in sums.items() if v != 0}


def insert_with_origins(db_url: str, loads: list[tuple[Weighing, str | None]]) -> None:
    """Raw rows as ingest stores them (rollups refreshed), each with its origin_site_id."""
    with psycopg.connect(db_url) as conn:
        insert_weighings(conn, [w for w, _ in loads])
        for w, origin in loads:
            conn.execute(
                "UPDATE weighing SET origin_site_id = %s WHERE site_id = %s AND seq = %s",
                (origin, w.site_id, w.seq),
            )


def _background() -> list[Weighing]:
    return random_weighings(random.Random(23), START, 24 * 5, 6)


def seed_database(db_url: str) -> None:
    """The two cities, five days of weighings and the landfill loads, once per module."""
    background = _background()
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        conn.execute(
            "INSERT INTO city (city_id, name, province, timezone)"
            " VALUES ('othertown', 'Othertown', 'Jawa Barat', 'Asia/Jakarta')"
        )
        conn.execute("INSERT INTO district VALUES ('othertown', 'coblong', 'Coblong Lain')")
        conn.execute(
            "INSERT INTO site (site_id, city_id, district_id, name, site_type)"
            " VALUES (%s, 'othertown', 'coblong', 'TPS Othertown', 'depot')",
            (OTHER_CITY_DEPOT,),
        )
        conn.commit()
        insert_weighings(conn, background)
    insert_with_origins(db_url, LOADS)
    with psycopg.connect(db_url) as conn:
        if uses_timescaledb(conn):  # old days materialised, as the refresh policies leave them
            bring_rollups_up_to_date(conn, START, START + timedelta(days=6))


@pytest.fixture
def seeded(
    seeded_db_url: str,
) -> tuple[str, list[Weighing], dict[tuple[str, int], str | None]]:
    """A fresh copy of the seeded database, the weighings in it and the loads' origins."""
    # Background landfill loads carry no origin: unknown, they stay on the gate's district.
    origins = {(w.site_id, w.seq): o for w, o in LOADS}
    return seeded_db_url, _background() + [w for w, _ in LOADS], origins


def _by_bucket_and_district(body: dict) -> dict[tuple[str, str], float]:
    return {(r["bucket_start"][:10], r["district"]): r["tonnes"] for r in body["rows"]}


def _assert_close(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, tonnes in want.items():
        assert got[key] == pytest.approx(tonnes, abs=0.0011), key


@pytest.mark.parametrize(("bucket", "span"), [("day", DAYS), ("month", MONTHS)])
def test_district_view_books_landfill_loads_to_their_origin_district(
    seeded, monkeypatch, bucket, span
):
    db_url, rows, origins = seeded
    params = {**span, "bucket": bucket, "group_by": "district"}
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        got = client.get("/v1/tonnage", params=params)
    assert got.status_code == 200, got.text
    _assert_close(
        _by_bucket_and_district(got.json()),
        expected(rows, origins, bucket, span["from"], span["to"]),
    )


def test_districts_add_up_to_the_city_total_and_the_gate_keeps_its_loads_by_site(
    seeded, monkeypatch
):
    db_url, rows, _ = seeded
    params = {**MONTHS, "bucket": "total"}
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        by_district = client.get("/v1/tonnage", params={**params, "group_by": "district"}).json()
        by_site = client.get("/v1/tonnage", params={**params, "group_by": "site"}).json()
        by_material = client.get("/v1/tonnage", params={**params, "group_by": "material"}).json()
    district_kg = sum(Decimal(str(r["tonnes"])) for r in by_district["rows"])
    site_kg = sum(Decimal(str(r["tonnes"])) for r in by_site["rows"])
    material_kg = sum(Decimal(str(r["tonnes"])) for r in by_material["rows"])
    want = float(sum((fate_kg(w) for w in rows), Decimal(0)) / 1000)
    assert float(district_kg) == pytest.approx(want, abs=0.01)
    assert float(site_kg) == pytest.approx(want, abs=0.01)
    assert float(material_kg) == pytest.approx(want, abs=0.01)
    gate = {r["site"]: r["tonnes"] for r in by_site["rows"]}[GATE]
    gate_kg = sum((w.net_kg for w in rows if w.site_id == GATE), Decimal(0))
    assert gate == pytest.approx(float(gate_kg / 1000), abs=0.0011)


def test_late_landfill_load_and_an_origin_edit_show_at_the_next_request(seeded, monkeypatch):
    db_url, rows, origins = seeded
    params = {**DAYS, "bucket": "day", "group_by": "district"}
    late, late_origin = _load("2026-02-27T05:00:00+00:00", 70101, "8888.125", "bank-sukajadi")
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        client.get("/v1/tonnage", params=params)
        client.get("/v1/tonnage", params=params)  # closed days: cached where a cache exists
        insert_with_origins(db_url, [(late, late_origin)])
        after_late = client.get("/v1/tonnage", params=params).json()
        with psycopg.connect(db_url) as conn:  # the first load turns out to have come from cicendo
            conn.execute(
                "UPDATE weighing SET origin_site_id = 'tps-cicendo' WHERE site_id = %s AND seq = 70001",
                (GATE,),
            )
        after_edit = client.get("/v1/tonnage", params=params).json()
    rows = [*rows, late]
    origins = {**origins, (GATE, late.seq): late_origin}
    _assert_close(
        _by_bucket_and_district(after_late),
        expected(rows, origins, "day", DAYS["from"], DAYS["to"]),
    )
    origins[(GATE, 70001)] = "tps-cicendo"
    _assert_close(
        _by_bucket_and_district(after_edit),
        expected(rows, origins, "day", DAYS["from"], DAYS["to"]),
    )
