"""Rollups always equal a recomputation from raw rows: ingest's increments on plain PostgreSQL,
the real-time continuous aggregates on TimescaleDB."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pisman.rollups import bring_rollups_up_to_date, uses_timescaledb

SITES = [("tps-a", "depot"), ("tps-b", "depot"), ("bank-a", "waste_bank")]
START = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)  # 22:00 WIB: batches straddle local midnight
# Each example writes into days of its own, 4 days after the previous one's: on TimescaleDB
# the refresh leaves the materialised range behind it, and rows below that show only after
# the next refresh (late data), which is not what this test is about.
_EXAMPLE_DAYS = itertools.count()

weighing = st.tuples(
    st.sampled_from([s for s, _ in SITES]),
    st.integers(0, 5),  # seq (small, so re-deliveries collide)
    st.integers(0, 6 * 60),  # minutes after START
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("9000"), places=3),
    st.sampled_from(["food", "plastic", "mixed"]),
    st.sampled_from(["mixed", "separated", "deposit"]),
    st.booleans(),  # manual
    st.one_of(st.none(), st.decimals(min_value=Decimal("0"), max_value=Decimal("9000"), places=2)),
)
bin_reading = st.tuples(
    st.sampled_from(["bin-1", "bin-2"]),
    st.integers(0, 5),
    st.integers(0, 6 * 60),
    st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=4),
    st.one_of(st.none(), st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=2)),
)


def _setup(conn: psycopg.Connection) -> None:
    # ON CONFLICT: on TimescaleDB an earlier example committed them (see _forget).
    conn.execute("INSERT INTO city (city_id, name) VALUES ('t', 'T') ON CONFLICT DO NOTHING")
    conn.execute("INSERT INTO district VALUES ('t', 'd', 'D') ON CONFLICT DO NOTHING")
    for site_id, site_type in SITES:
        conn.execute(
            "INSERT INTO site (site_id, city_id, district_id, name, site_type) VALUES (%s, 't', 'd', %s, %s)"
            " ON CONFLICT DO NOTHING",
            (site_id, site_id, site_type),
        )
    conn.execute("CREATE TEMP TABLE stage_weighing (LIKE weighing INCLUDING DEFAULTS)")
    conn.execute("CREATE TEMP TABLE stage_bin_reading (LIKE bin_reading INCLUDING DEFAULTS)")


def _snapshot(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5, 6").fetchall()
        for table in ("weighing_hourly", "weighing_daily", "bin_hourly")
    }


# What each rollup must hold, computed straight from the raw rows (hours in UTC, days local).
FROM_RAW = {
    "weighing_hourly": """
        SELECT date_trunc('hour', ts, 'UTC'), city_id, site_id, material, stream, from_own_site,
               sum(net_kg), count(*), count(*) FILTER (WHERE manual), sum(net_kg * price_per_kg)
        FROM weighing GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6""",
    "weighing_daily": """
        SELECT date_trunc('day', ts, 'Asia/Jakarta'), city_id, site_id, material, stream,
               from_own_site, sum(net_kg), count(*), count(*) FILTER (WHERE manual),
               sum(net_kg * price_per_kg)
        FROM weighing GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6""",
    "bin_hourly": """
        SELECT date_trunc('hour', ts, 'UTC'), city_id, site_id, device_id,
               sum(fill_ratio), max(fill_ratio), min(battery_pct), count(*)
        FROM bin_reading GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4, 5, 6""",
}


def _from_raw(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {table: conn.execute(query).fetchall() for table, query in FROM_RAW.items()}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.tuples(st.lists(weighing, max_size=12), st.lists(bin_reading, max_size=12)),
        min_size=1,
        max_size=5,
    )
)
def test_incremental_rollups_equal_a_rebuild_from_raw_rows(db_url: str, batches: list) -> None:
    start = START + timedelta(days=4 * next(_EXAMPLE_DAYS))
    with psycopg.connect(db_url) as conn:
        _setup(conn)
        inserted = 0
        for weighings, bins in batches:
            conn.execute("DELETE FROM stage_weighing")
            conn.execute("DELETE FROM stage_bin_reading")
            seen: set[tuple[str, int, int]] = set()
            for site, seq, minute, kg, material, stream, manual, price in weighings:
                if (site, seq, minute) in seen:
                    continue  # a batch is deduplicated by ingest before staging
                seen.add((site, seq, minute))
                conn.execute(
                    "INSERT INTO stage_weighing (ts, city_id, site_id, device_id, seq, net_kg, material,"
                    " stream, manual, price_per_kg) VALUES (%s, 't', %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        start + timedelta(minutes=minute),
                        site,
                        f"scale-{site}",
                        seq,
                        kg,
                        material,
                        stream,
                        manual,
                        price,
                    ),
                )
            for device, seq, minute, fill, battery in bins:
                if (device, seq, minute) in seen:
                    continue
                seen.add((device, seq, minute))
                conn.execute(
                    "INSERT INTO stage_bin_reading (ts, city_id, site_id, device_id, seq, fill_ratio, battery_pct)"
                    " VALUES (%s, 't', 'tps-a', %s, %s, %s, %s)",
                    (start + timedelta(minutes=minute), device, seq, fill, battery),
                )
            inserted += len(
                conn.execute("SELECT * FROM pisman_insert_staged_weighings()").fetchall()
            )
            inserted += len(conn.execute("SELECT * FROM pisman_insert_staged_bins()").fetchall())
        incremental = _snapshot(conn)
        from_raw = _from_raw(conn)
        bring_rollups_up_to_date(conn, start - timedelta(days=1), start + timedelta(days=1))
        rebuilt = _snapshot(conn)
        raw = conn.execute(
            "SELECT (SELECT count(*) FROM weighing) + (SELECT count(*) FROM bin_reading)"
        ).fetchone()
        if uses_timescaledb(conn):
            _forget(conn)  # the refresh committed: undo by hand for the next example
        conn.rollback()
    assert raw is not None and raw[0] == inserted
    assert incremental == from_raw
    assert rebuilt == from_raw


def _forget(conn: psycopg.Connection) -> None:
    """Delete the readings every example stored and materialised, so the next one starts empty
    (over all examples' days: one that failed half-way may have left its own)."""
    conn.execute("DELETE FROM weighing")
    conn.execute("DELETE FROM bin_reading")
    bring_rollups_up_to_date(conn, START - timedelta(days=1), datetime.now(UTC))
    left = {table: rows for table, rows in _snapshot(conn).items() if rows}
    assert not left, f"materialised rows left after deleting every reading: {left}"
