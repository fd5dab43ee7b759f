"""Rollups brought up to date after writes: plain PostgreSQL's tables, TimescaleDB's continuous
aggregates, and the tonnage grain tables both backends keep (sql/025_tonnage_grain.sql)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

# Plain PostgreSQL: recompute the rollup tables' buckets (grain tables included) in the caller's
# transaction.
REBUILD_SQL = "SELECT pisman_rebuild_rollups(%s, %s)"
# Either backend: recompute the tonnage grain tables' buckets; returns (table, rows written).
REBUILD_GRAIN_SQL = "SELECT table_name, rows_written FROM pisman_rebuild_tonnage_grain(%s, %s)"
# TimescaleDB: every continuous aggregate with the aggregate it is built on (NULL when it reads
# a hypertable) and, when rows from `lo` on lie below its materialised range (the watermark,
# under which real-time aggregation does not look), how far to refresh: up to the watermark,
# never beyond (that would materialise live hours and make every later batch "late"), and a
# day past `hi` at most so that the bucket holding `hi` is whole inside the window. It reads
# TimescaleDB's catalog rather than timescaledb_information's views: ingest runs it after every
# batch, and the views cost ~15 ms a call.
STALE_AGGREGATES_SQL = """
SELECT format('%%I.%%I', c.user_view_schema, c.user_view_name),
       CASE WHEN p.mat_hypertable_id IS NOT NULL
            THEN format('%%I.%%I', p.user_view_schema, p.user_view_name) END,
       CASE WHEN w.watermark > %(lo)s::timestamptz
            THEN LEAST(w.watermark, %(hi)s::timestamptz + INTERVAL '1 day') END
FROM _timescaledb_catalog.continuous_agg c
CROSS JOIN LATERAL (
  SELECT _timescaledb_functions.to_timestamp(
           _timescaledb_functions.cagg_watermark(c.mat_hypertable_id)) AS watermark
) AS w
LEFT JOIN _timescaledb_catalog.continuous_agg p ON p.mat_hypertable_id = c.parent_mat_hypertable_id
"""
REFRESH_SQL = "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)"


def uses_timescaledb(conn: psycopg.Connection) -> bool:
    """Whether this database took the TimescaleDB path of the schema."""
    row = conn.execute("SELECT pisman_has_timescale()").fetchone()
    return bool(row and row[0])


def refresh_order(aggregates: dict[str, str | None]) -> list[str]:
    """Aggregate names (mapped to the aggregate each is built on), each after its parent."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        parent = aggregates.get(name)
        if parent is not None and parent not in ordered:
            visit(parent)
        if name not in ordered:
            ordered.append(name)

    for name in sorted(aggregates):
        visit(name)
    return ordered


def stale_aggregates(
    conn: psycopg.Connection, lo: datetime, hi: datetime
) -> list[tuple[str, datetime]]:
    """TimescaleDB: the aggregates whose materialised range hides rows in [lo, hi], and those
    they are built on, parents first, each with the end of the window to refresh."""
    rows = conn.execute(STALE_AGGREGATES_SQL, {"lo": lo, "hi": hi}).fetchall()
    parents = {str(view): parent for view, parent, _ in rows}
    until = {str(view): end for view, _, end in rows if end is not None}
    # A daily aggregate reads the hourly one's materialised rows: rows above the hourly
    # watermark but below the daily one reach it only once the hourly one materialises them.
    for view, end in list(until.items()):
        parent = parents.get(view)
        while parent is not None:
            until[parent] = max(end, until.get(parent, end))
            parent = parents.get(parent)
    return [(view, until[view]) for view in refresh_order(parents) if view in until]


def refresh_aggregates(
    conn: psycopg.Connection, windows: list[tuple[str, datetime]], lo: datetime
) -> None:
    """TimescaleDB: refresh each aggregate from a day before `lo` to its window's end.

    Must be called outside a transaction: the connection is switched to autocommit meanwhile.
    """
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        for view, until in windows:
            conn.execute(REFRESH_SQL, (view, lo - timedelta(days=1), until))
    finally:
        conn.autocommit = autocommit


def refresh_late_rows(conn: psycopg.Connection, lo: datetime, hi: datetime) -> list[str]:
    """TimescaleDB: after rows in [lo, hi] were committed, refresh the aggregates whose
    materialised range hides them (and those they are built on); return their names.

    Only for a database on the TimescaleDB path (uses_timescaledb), with no transaction
    open; a no-op for rows that real-time aggregation already shows.
    """
    windows = stale_aggregates(conn, lo, hi)
    conn.rollback()  # a refresh runs outside any transaction
    if windows:
        refresh_aggregates(conn, windows, lo)
    return [view for view, _ in windows]


def bring_rollups_up_to_date(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """Recompute every rollup bucket between start and end from the raw rows (after a bulk load).

    On plain PostgreSQL this runs pisman_rebuild_rollups() in the caller's transaction (the
    caller commits). On TimescaleDB it rebuilds the tonnage grain tables, then COMMITS the caller's transaction (a refresh must
    see the rows and cannot run inside a transaction block), then refreshes each continuous
    aggregate, parents first, over the window widened by a day each side (only whole buckets
    are materialised) and ending no later than now: a materialised range reaching into the
    future would hide rows written later until the next refresh.
    """
    if not uses_timescaledb(conn):
        conn.execute(REBUILD_SQL, (start, end))
        return
    rebuild_tonnage_grain(conn, start, end)
    conn.commit()
    until = min(end + timedelta(days=1), datetime.now(UTC))
    parents = {
        str(view): parent
        for view, parent, _ in conn.execute(
            STALE_AGGREGATES_SQL, {"lo": start, "hi": end}
        ).fetchall()
    }
    conn.commit()
    refresh_aggregates(conn, [(view, until) for view in refresh_order(parents)], start)


def rebuild_tonnage_grain(
    conn: psycopg.Connection, start: datetime, end: datetime
) -> list[tuple[str, int]]:
    """Recompute the tonnage grain tables between start and end (widened to whole local days,
    the site-month table to whole months) from raw rows, in the caller's transaction, on either
    backend; return (table, rows written)."""
    rows = conn.execute(REBUILD_GRAIN_SQL, (start, end)).fetchall()
    return [(str(table), int(n)) for table, n in rows]
