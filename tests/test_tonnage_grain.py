"""The tonnage grain tables (sql/025) always equal a recomputation from raw weighings: through
ingest's statement, site moves, repairs and an upgrade of a database that already holds readings;
and the API answers the same from them as from weighing_daily."""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.queries.tonnage import WEIGHING_DAILY, TonnageQuery, build_sql, choose_source, tonnage
from pisman import db
from pisman.rollups import bring_rollups_up_to_date, rebuild_tonnage_grain
from pisman.settings import PROJECT_ROOT
from tests.support.api_seed import (
    CITY,
    insert_raw_weighings,
    insert_weighings,
    random_weighings,
    seed_city,
)
from tests.support.databases import Backend

TZ = ZoneInfo("Asia/Jakarta")
# (site, district, site type, process kind) at the start of every example.
SITES = [
    ("tps-a", "d1", "depot", None),
    ("bank-a", "d2", "waste_bank", None),
    ("fac-a", "d1", "processing", "compost"),
    ("gate-a", "d2", "landfill", None),
]
TYPES = [("depot", None), ("waste_bank", None), ("processing", "compost"), ("processing", "rdf")]
START = datetime(2024, 3, 31, 15, 0, tzinfo=UTC)  # 22:00 WIB on the last day of a month
_EXAMPLE = itertools.count()

# What each grain table must hold, straight from raw rows and the sites as they are now.
FROM_RAW = {
    "tonnage_daily_district": """
        SELECT date_trunc('day', w.ts, 'Asia/Jakarta'), w.city_id, s.district_id, s.site_type,
               s.process_kind, w.stream, w.material, w.from_own_site, sum(w.net_kg), count(*),
               count(*) FILTER (WHERE w.manual), sum(w.net_kg * w.price_per_kg)
        FROM weighing w JOIN site s ON s.site_id = w.site_id
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8""",
    "tonnage_daily_city": """
        SELECT date_trunc('day', w.ts, 'Asia/Jakarta'), w.city_id, s.site_type, s.process_kind,
               w.stream, w.material, w.from_own_site, sum(w.net_kg), count(*),
               count(*) FILTER (WHERE w.manual), sum(w.net_kg * w.price_per_kg)
        FROM weighing w JOIN site s ON s.site_id = w.site_id
        GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7""",
    "tonnage_monthly_site": """
        SELECT date_trunc('month', w.ts, 'Asia/Jakarta'), w.city_id, w.site_id, w.stream,
               w.material, w.from_own_site, sum(w.net_kg), count(*),
               count(*) FILTER (WHERE w.manual), sum(w.net_kg * w.price_per_kg),
               bit_or(1 << (extract(day FROM w.ts AT TIME ZONE 'Asia/Jakarta')::int - 1))
        FROM weighing w
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6""",
}
STORED = {
    "tonnage_daily_district": """
        SELECT bucket, city_id, district_id, site_type, process_kind, stream, material,
               from_own_site, net_kg, weighings, manual_weighings, amount_rp
        FROM tonnage_daily_district ORDER BY 1, 2, 3, 4, 5, 6, 7, 8""",
    "tonnage_daily_city": """
        SELECT bucket, city_id, site_type, process_kind, stream, material, from_own_site,
               net_kg, weighings, manual_weighings, amount_rp
        FROM tonnage_daily_city ORDER BY 1, 2, 3, 4, 5, 6, 7""",
    "tonnage_monthly_site": """
        SELECT bucket, city_id, site_id, stream, material, from_own_site, net_kg, weighings,
               manual_weighings, amount_rp, days_mask
        FROM tonnage_monthly_site ORDER BY 1, 2, 3, 4, 5, 6""",
}


def _from_raw(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {t: conn.execute(q).fetchall() for t, q in FROM_RAW.items()}


def _stored(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {t: conn.execute(q).fetchall() for t, q in STORED.items()}


weighing = st.tuples(
    st.sampled_from([s for s, *_ in SITES]),
    st.integers(0, 5),  # seq (small, so re-deliveries collide)
    st.integers(0, 30 * 60),  # minutes after the example's start: crosses a day and a month
    st.decimals(min_value=Decimal("0"), max_value=Decimal("9000"), places=3),
    st.sampled_from(["food", "plastic", "mixed"]),
    st.sampled_from(["mixed", "separated", "deposit", "to_landfill"]),
    st.booleans(),  # manual
    st.booleans(),  # from own site
    st.one_of(st.none(), st.decimals(min_value=Decimal("0"), max_value=Decimal("9000"), places=2)),
)
move = st.tuples(
    st.sampled_from([s for s, *_ in SITES]),
    st.sampled_from(["d1", "d2", "d3"]),
    st.sampled_from(TYPES),
)
step = st.one_of(
    st.tuples(st.just("batch"), st.lists(weighing, max_size=10)),
    st.tuples(st.just("move"), move),
)


def _setup(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO city (city_id, name) VALUES ('t', 'T') ON CONFLICT DO NOTHING")
    for d in ("d1", "d2", "d3"):
        conn.execute("INSERT INTO district VALUES ('t', %s, %s) ON CONFLICT DO NOTHING", (d, d))
    for site_id, district, site_type, kind in SITES:
        conn.execute(
            "INSERT INTO site (site_id, city_id, district_id, name, site_type, process_kind)"
            " VALUES (%s, 't', %s, %s, %s, %s)",
            (site_id, district, site_id, site_type, kind),
        )
    conn.execute("CREATE TEMP TABLE stage_weighing (LIKE weighing INCLUDING DEFAULTS)")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_ingest_and_site_moves_keep_the_grain_equal_to_raw_rows(db_url: str, steps: list) -> None:
    start = START + timedelta(days=40 * next(_EXAMPLE))
    with psycopg.connect(db_url) as conn:
        _setup(conn)
        for kind, payload in steps:
            if kind == "move":
                site_id, district, (site_type, process_kind) = payload
                conn.execute(
                    "UPDATE site SET district_id = %s, site_type = %s, process_kind = %s"
                    " WHERE site_id = %s",
                    (district, site_type, process_kind, site_id),
                )
                continue
            conn.execute("DELETE FROM stage_weighing")
            seen: set[tuple[str, int, int]] = set()
            for site, seq, minute, kg, material, stream, manual, own, price in payload:
                if (site, seq, minute) in seen:
                    continue  # ingest deduplicates a batch before staging it
                seen.add((site, seq, minute))
                conn.execute(
                    "INSERT INTO stage_weighing (ts, city_id, site_id, device_id, seq, net_kg,"
                    " material, stream, manual, from_own_site, price_per_kg)"
                    " VALUES (%s, 't', %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        start + timedelta(minutes=minute),
                        site,
                        f"scale-{site}",
                        seq,
                        kg,
                        material,
                        stream,
                        manual,
                        own,
                        price,
                    ),
                )
            conn.execute("SELECT * FROM pisman_insert_staged_weighings()").fetchall()
        kept = _stored(conn)
        expected = _from_raw(conn)
        rebuilt_counts = rebuild_tonnage_grain(
            conn, start - timedelta(days=1), start + timedelta(days=3)
        )
        rebuilt = _stored(conn)
        conn.rollback()  # nothing committed: the next example starts empty on either backend
    assert kept == expected
    assert rebuilt == expected
    assert dict(rebuilt_counts) == {t: len(rows) for t, rows in expected.items()}


def test_a_rolled_back_batch_adds_nothing_and_a_redelivery_adds_nothing(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        _setup(conn)
        conn.commit()
        row = (START, "t", "gate-a", "scale-gate-a", 1, Decimal("5000"), "mixed", "to_landfill")
        stage = (
            "INSERT INTO stage_weighing (ts, city_id, site_id, device_id, seq, net_kg, material,"
            " stream) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        )
        conn.execute(stage, row)
        conn.execute("SELECT * FROM pisman_insert_staged_weighings()").fetchall()
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM tonnage_daily_city").fetchone() == (0,)
        for _ in range(2):  # the same reading delivered twice
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_weighing (LIKE weighing INCLUDING DEFAULTS)"
            )
            conn.execute("DELETE FROM stage_weighing")
            conn.execute(stage, row)
            conn.execute("SELECT * FROM pisman_insert_staged_weighings()").fetchall()
            conn.commit()
        got = conn.execute("SELECT net_kg, weighings FROM tonnage_daily_district").fetchall()
        assert got == [(Decimal("5000"), 1)]
        assert _stored(conn) == _from_raw(conn)


def _migrations_upto(tmp: Path, last: int) -> Path:
    folder = tmp / f"sql_upto_{last}"
    folder.mkdir()
    for path in sorted((PROJECT_ROOT / "sql").glob("*.sql")):
        if int(path.name[:3]) <= last:
            shutil.copy(path, folder / path.name)
    return folder


def test_upgrade_fills_the_grain_from_stored_readings_and_says_how_long(
    empty_db_url: str, tmp_path: Path
) -> None:
    db.migrate(empty_db_url, _migrations_upto(tmp_path, 24))
    rows = random_weighings(random.Random(5), START, 24 * 3, 5)
    with psycopg.connect(empty_db_url) as conn:
        seed_city(conn, bins=0)
        conn.commit()
        insert_raw_weighings(conn, rows)
        conn.commit()
    said: list[str] = []
    applied = db.migrate(empty_db_url, PROJECT_ROOT / "sql", on_progress=said.append)
    assert "025_tonnage_grain.sql" in applied
    with psycopg.connect(empty_db_url) as conn:
        stored = _stored(conn)
        expected = _from_raw(conn)
    assert stored == expected
    assert all(stored.values())
    notes = [s for s in said if s.startswith("025_tonnage_grain.sql: ")]
    assert (
        f"025_tonnage_grain.sql: filled tonnage_daily_district with {len(expected['tonnage_daily_district'])} rows"
        in notes
    )
    assert any(f"{len(rows)} weighings" in s and " s" in s for s in notes), notes


def test_upgrade_of_an_empty_database_says_there_was_nothing(empty_db_url: str) -> None:
    said: list[str] = []
    db.migrate(empty_db_url, PROJECT_ROOT / "sql", on_progress=said.append)
    assert "025_tonnage_grain.sql: tonnage grain: no weighings stored yet, nothing to fill" in said


# Every grouping the API offers (site aside: its sources are tested below) and the extra ones
# the reports use, with each bucket size: the grain answers exactly what weighing_daily answers.
GROUPINGS = [
    (),
    ("category",),
    ("district",),
    ("site_type",),
    ("material",),
    ("category", "district"),
    ("category", "national_term", "site_type", "process_kind"),
    ("category", "material"),
    ("district", "material", "stream"),
    ("site",),
    ("category", "site"),
    ("site", "stream"),
    ("category", "site", "district", "material"),
]
RANGES = [("2026-02-01", "2026-04-01"), ("2026-02-26", "2026-03-03"), ("2026-03-01", "2026-03-02")]


@pytest.fixture(scope="module")
def seeded_month(module_db_url: str) -> str:
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn, bins=0)
        start = datetime(2026, 2, 27, 10, tzinfo=UTC)
        insert_weighings(conn, random_weighings(random.Random(3), start, 24 * 4, 4))
        bring_rollups_up_to_date(conn, start - timedelta(days=1), start + timedelta(days=5))
        conn.commit()
    return module_db_url


def _local(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=TZ)


@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: ",".join(g) or "none")
def test_every_bucket_and_grouping_equals_weighing_daily(seeded_month: str, group_by) -> None:
    async def compare() -> list[str]:
        sources: list[str] = []
        async with await psycopg.AsyncConnection.connect(seeded_month) as conn:
            for (lo, hi), bucket, measures, site_types in itertools.product(
                RANGES,
                ("day", "week", "month", "total"),
                ((), ("fate", "separate", "collected", "all")),
                (None, ("landfill",), ("waste_bank", "processing")),
            ):
                q = TonnageQuery(
                    CITY, TZ, _local(lo), _local(hi), bucket, group_by, measures, site_types
                )
                sources.append(choose_source(q))
                got = await tonnage(conn, q)
                want = await tonnage(conn, q, source=WEIGHING_DAILY)
                assert got.rows == want.rows, (q, choose_source(q))
                if site_types is None and measures:
                    assert got.rows, q  # compared something
        return sources

    used = set(asyncio.run(compare()))
    if "site" in group_by:
        assert "tonnage_monthly_site" in used
    else:
        assert used & {"tonnage_daily_city", "tonnage_daily_district"}


def test_a_named_source_that_cannot_answer_is_refused() -> None:
    q = TonnageQuery(CITY, TZ, _local("2026-02-01"), _local("2026-03-01"), "month", ("district",))
    with pytest.raises(ValueError, match="cannot answer"):
        build_sql(q, "tonnage_daily_city")
    with pytest.raises(ValueError, match="cannot answer"):
        build_sql(TonnageQuery(CITY, TZ, q.start, q.end, "month", ("site",)), "tonnage_daily_city")


def test_storage_has_the_grain_as_plain_tables(db_url: str, backend: Backend) -> None:
    with psycopg.connect(db_url) as conn:
        kinds = dict(
            conn.execute(
                "SELECT relname, relkind FROM pg_class WHERE relname IN"
                " ('tonnage_daily_district', 'tonnage_daily_city', 'tonnage_monthly_site')"
            ).fetchall()
        )
    assert kinds == dict.fromkeys(
        ("tonnage_daily_district", "tonnage_daily_city", "tonnage_monthly_site"), "r"
    ), backend.name


def test_a_site_moved_while_a_batch_is_in_flight_keeps_the_grain_exact(db_url: str) -> None:
    """The move's recomputation waits for the open batch (city lock), so the batch's rows, added
    under the old district, are recomputed under the new one."""
    with psycopg.connect(db_url) as ingest, psycopg.connect(db_url) as admin:
        _setup(ingest)
        ingest.commit()
        ingest.execute("DELETE FROM stage_weighing")
        ingest.execute(
            "INSERT INTO stage_weighing (ts, city_id, site_id, device_id, seq, net_kg, material,"
            " stream) VALUES (%s, 't', 'bank-a', 'scale-bank-a', 1, 12.5, 'plastic', 'deposit')",
            (START,),
        )
        ingest.execute("SELECT * FROM pisman_insert_staged_weighings()").fetchall()
        moved = threading.Thread(
            target=lambda: (
                admin.execute("UPDATE site SET district_id = 'd3' WHERE site_id = 'bank-a'"),
                admin.commit(),
            )
        )
        moved.start()
        moved.join(1.0)
        assert moved.is_alive(), "the move did not wait for the batch in flight"
        ingest.commit()
        moved.join(10)
        assert not moved.is_alive()
        stored, expected = _stored(ingest), _from_raw(ingest)
    assert stored == expected
    assert [r[2] for r in stored["tonnage_daily_district"]] == ["d3"]
