"""Closed-day tonnage cache: reused only while sql/021's counters hold, so every write shows at once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from api.queries.tonnage_cache import CACHE
from pisman.rollups import bring_rollups_up_to_date, uses_timescaledb
from tests.test_api_seed import Weighing, api_client, insert_weighings, random_weighings, seed_city

CACHE_ONLY_ON_PLAIN = "closed-day cache exists only on plain PostgreSQL"
START = datetime.fromisoformat("2026-02-26T12:00:00+00:00")
RANGE = {"from": "2026-02-26", "to": "2026-03-03"}  # closed days across a month edge: two entries


@pytest.fixture
def seeded(db_url: str) -> str:
    CACHE.clear()
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(conn, random_weighings(random.Random(11), START, 24 * 5, 6))
        if uses_timescaledb(conn):
            # Materialised, as the refresh policies leave old days: a late weighing then lies
            # below the materialised range, where real-time aggregation does not look.
            bring_rollups_up_to_date(conn, START, START + timedelta(days=5))
    return db_url


@pytest.mark.backend("postgresql", reason=CACHE_ONLY_ON_PLAIN)
@pytest.mark.parametrize(
    ("bucket", "group_by"),
    [("day", "category"), ("week", "district"), ("month", "site"), ("total", "material")],
)
def test_second_request_is_served_from_cache_with_identical_numbers(
    seeded, monkeypatch, bucket, group_by
):
    params = {**RANGE, "bucket": bucket, "group_by": group_by}
    with api_client(seeded, monkeypatch, role="viewer") as (client, _):
        first = client.get("/v1/tonnage", params=params)
        assert first.status_code == 200, first.text
        hits = CACHE.hits
        second = client.get("/v1/tonnage", params=params)
    assert CACHE.hits == hits + 2  # February and March
    assert second.json()["rows"] == first.json()["rows"]
    assert second.json()["rows"]


def test_late_weighing_for_a_cached_day_shows_in_the_next_request(seeded, monkeypatch):
    params = {**RANGE, "bucket": "total", "group_by": "category"}
    with api_client(seeded, monkeypatch, role="viewer") as (client, _):
        before = client.get("/v1/tonnage", params=params).json()
        late = Weighing(
            datetime.fromisoformat("2026-02-27T03:00:00+00:00"),
            "tpa-gate",
            80001,
            Decimal("4321.125"),
            "mixed",
            "to_landfill",
        )
        with psycopg.connect(seeded) as conn:
            insert_weighings(conn, [late])
        after = client.get("/v1/tonnage", params=params).json()
    residual = {r["category"]: r["tonnes"] for r in before["rows"]}["residual"]
    assert {r["category"]: r["tonnes"] for r in after["rows"]}["residual"] == pytest.approx(
        residual + 4.321125, abs=0.0011
    )


@pytest.mark.backend(
    "postgresql",
    reason="weighing_daily is a table only on plain PostgreSQL (on TimescaleDB a continuous"
    " aggregate, which cannot be updated) and the closed-day cache exists only there",
)
def test_direct_rollup_repair_invalidates_the_cached_month(seeded, monkeypatch):
    params = {**RANGE, "bucket": "total", "group_by": "category"}
    with api_client(seeded, monkeypatch, role="viewer") as (client, _):
        before = client.get("/v1/tonnage", params=params).json()
        with psycopg.connect(seeded) as conn:
            conn.execute(
                "UPDATE weighing_daily SET net_kg = net_kg + 1000"
                " WHERE site_id = 'tpa-gate' AND stream = 'to_landfill'"
                " AND bucket = '2026-03-01T00:00:00+07:00'"
            )
        after = client.get("/v1/tonnage", params=params).json()
    got = {r["category"]: r["tonnes"] for r in after["rows"]}["residual"]
    want = {r["category"]: r["tonnes"] for r in before["rows"]}["residual"]
    assert got == pytest.approx(want + 1.0 * _rows_updated(seeded), abs=0.0011)


def _rows_updated(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM weighing_daily WHERE site_id = 'tpa-gate'"
            " AND stream = 'to_landfill' AND bucket = '2026-03-01T00:00:00+07:00'"
        ).fetchone()
    assert row is not None and row[0] > 0
    return int(row[0])


def test_site_moved_to_another_district_regroups_cached_days_at_once(seeded, monkeypatch):
    params = {**RANGE, "bucket": "total", "group_by": "site,district"}
    with api_client(seeded, monkeypatch, role="viewer") as (client, _):
        before = client.get("/v1/tonnage", params=params)
        assert before.status_code == 200, before.text
        site = next(r for r in before.json()["rows"] if r["site"] == "tpa-gate")
        other = "coblong" if site["district"] != "coblong" else "cicendo"
        with psycopg.connect(seeded) as conn:
            conn.execute("UPDATE site SET district_id = %s WHERE site_id = 'tpa-gate'", (other,))
        after = client.get("/v1/tonnage", params=params).json()
    moved = next(r for r in after["rows"] if r["site"] == "tpa-gate")
    assert moved["district"] == other
    assert moved["tonnes"] == site["tonnes"]


@pytest.mark.backend(
    "postgresql",
    reason="the closed-day version counters (sql/021) exist only on plain PostgreSQL,"
    " beside the closed-day cache",
)
def test_live_data_bumps_no_counter_and_late_data_bumps_its_day(db_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(
            conn, [Weighing(now, "tpa-gate", 1, Decimal("5000"), "mixed", "to_landfill")]
        )
        assert conn.execute("SELECT count(*) FROM api_closed_day_version").fetchone() == (0,)
        old = now - timedelta(days=10)
        insert_weighings(
            conn, [Weighing(old, "tpa-gate", 2, Decimal("5000"), "mixed", "to_landfill")]
        )
        bumped = conn.execute(
            "SELECT bucket, version FROM api_closed_day_version ORDER BY bucket"
        ).fetchall()
        day = conn.execute(
            "SELECT date_trunc('day', %s::timestamptz, 'Asia/Jakarta')", (old,)
        ).fetchone()
    assert day is not None
    assert [b for b, _ in bumped] == [day[0]]
    assert all(v >= 1 for _, v in bumped)
