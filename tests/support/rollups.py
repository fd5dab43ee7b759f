"""Bring the rollups up to date after rows were written behind ingest's back, on either backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

# Plain PostgreSQL: recompute the rollup tables' buckets in the caller's transaction.
REBUILD_SQL = "SELECT pisman_rebuild_rollups(%s, %s)"
# TimescaleDB: the continuous aggregates, each with the one it reads from (NULL for a
# hypertable), so that a daily aggregate built on the hourly one is refreshed after it.
AGGREGATES_SQL = """
SELECT ca.view_name, parent.view_name
FROM timescaledb_information.continuous_aggregates ca
LEFT JOIN timescaledb_information.continuous_aggregates parent
  ON parent.materialization_hypertable_schema = ca.hypertable_schema
 AND parent.materialization_hypertable_name = ca.hypertable_name
"""


def uses_timescaledb(conn: psycopg.Connection) -> bool:
    """Whether this database took the TimescaleDB path of the schema."""
    row = conn.execute("SELECT pisman_has_timescale()").fetchone()
    return bool(row and row[0])


def refresh_order(aggregates: list[tuple[str, str | None]]) -> list[str]:
    """Aggregate names, each after the aggregate it is built on."""
    parents = dict(aggregates)
    ordered: list[str] = []

    def visit(name: str) -> None:
        parent = parents.get(name)
        if parent is not None and parent not in ordered:
            visit(parent)
        if name not in ordered:
            ordered.append(name)

    for name in sorted(parents):
        visit(name)
    return ordered


def bring_rollups_up_to_date(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """Recompute every rollup bucket between start and end from the raw rows.

    On plain PostgreSQL this runs pisman_rebuild_rollups() in the caller's transaction (the
    caller commits). On TimescaleDB it first COMMITS the caller's transaction (a refresh must
    see the rows and cannot run inside a transaction block), then refreshes each continuous
    aggregate over the window widened by a day each side (only whole buckets are
    materialised) and ending no later than now: a materialised range reaching into the
    future would hide rows written later until the next refresh.
    """
    if not uses_timescaledb(conn):
        conn.execute(REBUILD_SQL, (start, end))
        return
    conn.commit()
    window_start = start - timedelta(days=1)
    window_end = min(end + timedelta(days=1), datetime.now(UTC))
    aggregates = [(str(v), p and str(p)) for v, p in conn.execute(AGGREGATES_SQL).fetchall()]
    conn.commit()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        for view in refresh_order(aggregates):
            conn.execute(
                "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
                (view, window_start, window_end),
            )
    finally:
        conn.autocommit = autocommit
