"""Storage benchmark: bytes per stored reading (raw, compressed, rollups) on PostgreSQL and TimescaleDB.

Run: .venv/bin/python -m bench.storage [--days 28] [--bins 100] [--backends postgresql,timescaledb]
Loads a synthetic Bandung-scale city (bench/api/load.py's generator: ~7,300 weighings a day from
about 680 scales; bin sensors every 5 minutes) into a fresh database on each backend, ending ten
days ago so that every chunk is past the compression horizon; brings the rollups up to date;
measures table + index bytes per reading; on TimescaleDB compresses every chunk (compress_chunk,
the migrations' segmentby device_id / orderby ts) and measures again
(hypertable_detailed_size, hypertable_compression_stats). Prints one markdown table and JSON.
docs/scaling.md builds the national estimate on these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from bench.api.load import Scale, load_bins, load_weighings, seed_city
from pisman import db
from pisman.rollups import bring_rollups_up_to_date
from pisman.settings import PROJECT_ROOT

DEFAULT_ADMIN_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "timescaledb": "postgresql://postgres@127.0.0.1:5433/postgres",
}
RAW = ("weighing", "bin_reading")
ROLLUPS = (
    "weighing_hourly",
    "weighing_daily",
    "bin_hourly",
    "tonnage_daily_district",
    "tonnage_daily_city",
    "tonnage_monthly_site",
)
# Plain tables: heap (with TOAST, free-space and visibility maps) and indexes.
PLAIN_SIZE = "SELECT pg_table_size(%(rel)s::regclass), pg_indexes_size(%(rel)s::regclass)"
# Hypertables: every chunk's heap + TOAST and indexes (compressed chunks included, as stored).
HYPERTABLE_SIZE = (
    "SELECT table_bytes + toast_bytes, index_bytes FROM hypertable_detailed_size(%(rel)s::regclass)"
)
IS_HYPERTABLE = (
    "SELECT format('%%I.%%I', hypertable_schema, hypertable_name) FROM"
    " timescaledb_information.hypertables WHERE hypertable_name = %(name)s"
)
# A continuous aggregate's rows live in its materialisation hypertable.
MATERIALIZATION = (
    "SELECT format('%%I.%%I', materialization_hypertable_schema, materialization_hypertable_name)"
    " FROM timescaledb_information.continuous_aggregates WHERE view_name = %(name)s"
)
COMPRESS_ALL = (
    "SELECT count(compress_chunk(c, if_not_compressed => true))"
    " FROM show_chunks(%(rel)s::regclass) AS c"
)
CHUNKS = "SELECT count(*) FROM show_chunks(%(rel)s::regclass)"
COMPRESSION_STATS = (
    "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes)"
    " FROM hypertable_compression_stats(%(rel)s::regclass)"
)


def relation_size(conn: psycopg.Connection, name: str) -> tuple[int, int, str]:
    """(heap + TOAST bytes, index bytes, how it was measured) of a table, hypertable or cagg."""
    timescale = db.storage_kind(conn) == "timescaledb"
    if timescale:
        row = conn.execute(MATERIALIZATION, {"name": name}).fetchone()
        if row is not None:
            heap, index = conn.execute(HYPERTABLE_SIZE, {"rel": row[0]}).fetchone() or (0, 0)
            return int(heap or 0), int(index or 0), "continuous aggregate"
        row = conn.execute(IS_HYPERTABLE, {"name": name}).fetchone()
        if row is not None:
            heap, index = conn.execute(HYPERTABLE_SIZE, {"rel": row[0]}).fetchone() or (0, 0)
            return int(heap or 0), int(index or 0), "hypertable"
    heap, index = conn.execute(PLAIN_SIZE, {"rel": name}).fetchone() or (0, 0)
    return int(heap), int(index), "table"


def count(conn: psycopg.Connection, name: str) -> int:
    """Rows a relation holds (a continuous aggregate: what its view returns)."""
    row = conn.execute(f"SELECT count(*) FROM {name}").fetchone()  # names from ROLLUPS/RAW only
    return int(row[0]) if row else 0


def measure(backend: str, admin_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Load, bring rollups up to date, measure; on TimescaleDB compress and measure again."""
    url = admin_url.rsplit("/", 1)[0] + f"/pisman_bench_storage_{uuid.uuid4().hex[:8]}"
    db.ensure_database(url)
    out: dict[str, Any] = {"backend": backend}
    try:
        db.migrate(url, PROJECT_ROOT / "sql")
        scale = Scale(bins=args.bins)
        end = date.today() - timedelta(days=10)
        first = end - timedelta(days=args.days)
        with psycopg.connect(url) as conn:
            kind = db.storage_kind(conn)
            if kind != backend:
                raise SystemExit(f"{admin_url} built the {kind} schema, not {backend}")
            version = conn.execute(
                "SELECT current_setting('server_version'),"
                " (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')"
            ).fetchone()
            assert version is not None
            out["label"] = (
                f"TimescaleDB {version[1]} (PostgreSQL {version[0].split()[0]})"
                if version[1]
                else f"PostgreSQL {version[0].split()[0]}"
            )
            t0 = time.perf_counter()
            sites = seed_city(conn, scale)
            n_w = load_weighings(conn, sites, scale, first, args.days)
            print(f"[{backend}] {n_w:,} weighings over {args.days} days", flush=True)
            n_b = load_bins(conn, scale, first, args.days)
            print(f"[{backend}] {n_b:,} bin readings ({args.bins} sensors every 5 min)", flush=True)
            out["load_s"] = time.perf_counter() - t0
            lo = datetime.combine(first, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
            hi = datetime.combine(end, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
            t1 = time.perf_counter()
            bring_rollups_up_to_date(conn, lo, hi)
            conn.commit()
            out["rollups_s"] = time.perf_counter() - t1
            print(f"[{backend}] rollups up to date in {out['rollups_s']:.1f} s", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            out["days"] = args.days
            out["sites"] = len(sites)
            out["bins"] = args.bins
            out["raw"] = {}
            for name in RAW:
                heap, index, how = relation_size(conn, name)
                out["raw"][name] = {"rows": count(conn, name), "heap": heap, "index": index}
                print(f"[{backend}] {name}: {how}, {heap + index:,} bytes", flush=True)
            out["rollups"] = {}
            for name in ROLLUPS:
                heap, index, how = relation_size(conn, name)
                out["rollups"][name] = {
                    "rows": count(conn, name),
                    "heap": heap,
                    "index": index,
                    "how": how,
                }
            if backend == "timescaledb":
                out["compressed"] = {}
                for name in RAW:
                    t2 = time.perf_counter()
                    chunks = conn.execute(CHUNKS, {"rel": name}).fetchone()
                    done = conn.execute(COMPRESS_ALL, {"rel": name}).fetchone()
                    took = time.perf_counter() - t2
                    conn.execute(f"VACUUM ANALYZE {name}")
                    heap, index, _ = relation_size(conn, name)
                    stats = conn.execute(COMPRESSION_STATS, {"rel": name}).fetchone()
                    assert stats is not None and chunks is not None and done is not None
                    out["compressed"][name] = {
                        "chunks": int(chunks[0]),
                        "compressed_now": int(done[0]),
                        "seconds": took,
                        "heap": heap,
                        "index": index,
                        "stats_before": int(stats[0] or 0),
                        "stats_after": int(stats[1] or 0),
                    }
                    print(
                        f"[{backend}] {name}: compressed {int(done[0])} of {int(chunks[0])} chunks"
                        f" in {took:.1f} s: {heap + index:,} bytes",
                        flush=True,
                    )
                    # The same rows are still there, read back through the columnstore.
                    assert count(conn, name) == out["raw"][name]["rows"], name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    return out


def _per(n: float, d: float) -> str:
    return f"{n / d:,.1f}" if d else "–"


def markdown(results: list[dict[str, Any]]) -> str:
    """One table: bytes per reading by backend, raw and compressed; rollups per day."""
    head = ["measure"] + [r["label"] for r in results]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * len(results) + "|"]

    def row(label: str, cells: list[str]) -> None:
        lines.append("| " + " | ".join([label, *cells]) + " |")

    for name in RAW:
        row(f"{name}: rows", [f"{r['raw'][name]['rows']:,}" for r in results])
        for part, title in (("heap", "table"), ("index", "indexes")):
            row(
                f"{name}: {title}, bytes/reading",
                [_per(r["raw"][name][part], r["raw"][name]["rows"]) for r in results],
            )
        row(
            f"{name}: table + indexes, bytes/reading",
            [
                _per(r["raw"][name]["heap"] + r["raw"][name]["index"], r["raw"][name]["rows"])
                for r in results
            ],
        )
        cells = []
        ratios = []
        for r in results:
            c = r.get("compressed", {}).get(name)
            if c is None:
                cells.append("–")
                ratios.append("–")
                continue
            after = c["heap"] + c["index"]
            before = r["raw"][name]["heap"] + r["raw"][name]["index"]
            cells.append(_per(after, r["raw"][name]["rows"]))
            ratios.append(
                f"{before / after:.1f}× ({c['stats_before'] / max(1, c['stats_after']):.1f}×"
                f" by hypertable_compression_stats)"
            )
        row(f"{name}: compressed, table + indexes, bytes/reading", cells)
        row(f"{name}: compression ratio", ratios)
    for name in ROLLUPS:
        row(
            f"rollup {name}: rows/day, bytes/day",
            [
                f"{r['rollups'][name]['rows'] / r['days']:,.0f}, "
                f"{(r['rollups'][name]['heap'] + r['rollups'][name]['index']) / r['days']:,.0f}"
                for r in results
            ],
        )
    row(
        "all rollups, bytes/day",
        [
            f"{sum(v['heap'] + v['index'] for v in r['rollups'].values()) / r['days']:,.0f}"
            for r in results
        ],
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure on every backend asked for; print one table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.storage", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--days", type=int, default=28, help="days of history to load")
    parser.add_argument("--bins", type=int, default=100, help="bin sensors (every 5 minutes)")
    parser.add_argument("--backends", default="postgresql,timescaledb")
    parser.add_argument("--postgresql-url", default=DEFAULT_ADMIN_URLS["postgresql"])
    parser.add_argument("--timescaledb-url", default=DEFAULT_ADMIN_URLS["timescaledb"])
    # Stopped from a background shell (SIGINT ignored there) or by SIGTERM: still drop the
    # databases and stop the broker and ingest (the finally blocks below).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or any(b not in DEFAULT_ADMIN_URLS for b in backends):
        parser.error("--backends: postgresql, timescaledb")
    if args.days < 7 or args.bins < 0:
        parser.error("--days must be at least 7 (one weighing chunk), --bins at least 0")
    urls = {"postgresql": args.postgresql_url, "timescaledb": args.timescaledb_url}
    load = os.getloadavg()[0]
    results = [measure(b, urls[b], args) for b in backends]
    print()
    print(markdown(results))
    print()
    print(
        f"{args.days} days, {results[0]['sites']} sites with one scale each, {args.bins} bin"
        f" sensors; load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at the end."
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
