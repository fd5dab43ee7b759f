"""Benchmark: GET /v1/bins/forecast (every bin's forecast in one answer) on a seeded Bandung.

Usage: .venv/bin/python bench/bin_forecast.py [--backends postgresql,timescaledb]
       [--days 28] [--scale 1] [--requests 10] [--cold-series 3]

For each backend: a fresh database with the schema and data/cities/bandung.yaml (its ~260
depot bins, or `--scale` times as many), 15-minute fill readings over `--days` with known
per-bin rates, a daily shape, sensor noise and emptyings near the threshold, rollups brought up
to date; then a fresh `pisman api` process per cold series, timing the first request (cold) and
`--requests` more (warm) for the whole city and for one district, with the CPU time the API
process spent on each (its share of the work whatever the load). Prints one table (ms).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
import psycopg

from bench.api.run import api_subprocess
from pisman import db, keys
from pisman.citydata import load_city, read_city_file
from pisman.rollups import bring_rollups_up_to_date
from pisman.settings import PROJECT_ROOT

ADMIN_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "timescaledb": "postgresql://postgres@127.0.0.1:5433/postgres",
}
CITY_FILE = PROJECT_ROOT / "data" / "cities" / "bandung.yaml"
READING_S = 900


def seed(url: str, *, days: int, scale: int, seed: int = 5) -> tuple[int, int]:
    """Bandung's city file, its depot bins (x scale) and `days` of readings; (bins, readings)."""
    city = read_city_file(CITY_FILE)
    rng = np.random.default_rng(seed)
    with psycopg.connect(url) as conn:
        load_city(conn, city)
        depots = [
            r[0]
            for r in conn.execute(
                "SELECT site_id FROM site WHERE city_id = %s AND site_type = 'depot' ORDER BY site_id",
                (city.city.id,),
            ).fetchall()
        ]
        devices = [(f"{site}-fc{k}", site) for k in range(scale) for site in depots]
        conn.cursor().executemany(
            "INSERT INTO device (device_id, city_id, site_id, kind, password_hash,"
            " reporting_interval_s) VALUES (%s, %s, %s, 'bin_sensor', 'x', %s)",
            [(d, city.city.id, s, READING_S) for d, s in devices],
        )
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        start = end - timedelta(days=days)
        ts = start.timestamp() + np.arange(int(days * 86400 / READING_S)) * READING_S
        local_h = ((ts + 7 * 3600) // 3600) % 24
        shape = np.where((local_h >= 6) & (local_h < 20), 1.6, 0.3)  # daytime filling
        buf = io.StringIO()
        stamps = [datetime.fromtimestamp(t, UTC).isoformat() for t in ts]
        n = 0
        for device_id, site in devices:
            rate = rng.uniform(0.15, 0.9) / 24 * READING_S / 3600  # per reading, mean day
            rise = rate * shape * rng.lognormal(0, 0.15, len(ts))
            level = rng.uniform(0, 0.6)
            for i, stamp in enumerate(stamps):
                level += rise[i]
                if level >= 0.8 + rng.uniform(0, 0.2):
                    level = rng.uniform(0.0, 0.05)
                fill = min(1.0, max(0.0, level + rng.normal(0, 0.01)))
                buf.write(f"{stamp},{city.city.id},{site},{device_id},{i + 1},{fill:.4f}\n")
                n += 1
        buf.seek(0)
        with conn.cursor().copy(
            "COPY bin_reading (ts, city_id, site_id, device_id, seq, fill_ratio)"
            " FROM STDIN WITH (FORMAT csv)"
        ) as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)
        bring_rollups_up_to_date(conn, start, end)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return len(devices), n


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used: its share of the work whatever the
    machine's load, where wall time under load measures the queue for the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(http: httpx.Client, path: str, pid: int) -> tuple[float, float, dict[str, object]]:
    """Wall ms and the API process's CPU ms of one request, and its answer."""
    c0, t0 = cpu_s(pid), time.perf_counter()
    r = http.get(path)
    ms = (time.perf_counter() - t0) * 1000
    cpu_ms = (cpu_s(pid) - c0) * 1000
    r.raise_for_status()
    return ms, cpu_ms, r.json()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="postgresql,timescaledb")
    p.add_argument("--postgresql-url", default=ADMIN_URLS["postgresql"])
    p.add_argument("--timescaledb-url", default=ADMIN_URLS["timescaledb"])
    p.add_argument("--db-name", default="pisman_bench_forecast")
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--scale", type=int, default=1, help="bins per Bandung depot")
    p.add_argument("--requests", type=int, default=10, help="warm requests per case")
    p.add_argument("--cold-series", type=int, default=3, help="API restarts")
    args = p.parse_args()
    admin = {"postgresql": args.postgresql_url, "timescaledb": args.timescaledb_url}
    rows = []
    for backend in args.backends.split(","):
        url = admin[backend].rsplit("/", 1)[0] + "/" + args.db_name
        with psycopg.connect(admin[backend], autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{args.db_name}"')
        db.migrate(url, PROJECT_ROOT / "sql")
        t0 = time.perf_counter()
        n_bins, n_readings = seed(url, days=args.days, scale=args.scale)
        print(
            f"[{backend}] {n_bins} bins, {n_readings:,} readings over {args.days} days seeded in "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        with psycopg.connect(url) as conn:
            key = keys.create_key(conn, role="viewer", name="bench-forecast")
            district = conn.execute(
                "SELECT s.district_id FROM site s JOIN device d ON d.site_id = s.site_id"
                " WHERE d.kind = 'bin_sensor' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            ).fetchone()
        assert district is not None
        cases = {
            "city": "/v1/bins/forecast",
            f"district {district[0]}": f"/v1/bins/forecast?district={district[0]}",
        }
        cold: dict[str, list[float]] = {c: [] for c in cases}
        warm: dict[str, list[float]] = {c: [] for c in cases}
        cpu: dict[str, list[float]] = {c: [] for c in cases}
        answered: dict[str, str] = {}
        for _ in range(args.cold_series):
            with (
                api_subprocess(url, "bandung") as (base, pid),
                httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as http,
            ):
                for case, path in cases.items():
                    ms, cpu_ms, body = _timed(http, path, pid)
                    cold[case].append(ms)
                    cpu[case].append(cpu_ms)
                    bins = body["bins"]
                    assert isinstance(bins, list)
                    ok = sum(1 for b in bins if b["status"] == "ok")
                    answered[case] = f"{len(bins)} bins, {ok} ok, {len(http.get(path).content):,} B"
                    for _ in range(args.requests):
                        ms, cpu_ms, _ = _timed(http, path, pid)
                        warm[case].append(ms)
                        cpu[case].append(cpu_ms)
        for case in cases:
            row = (
                backend,
                case,
                answered[case],
                statistics.median(cold[case]),
                max(cold[case]),
                statistics.median(warm[case]),
                sorted(warm[case])[max(0, int(len(warm[case]) * 0.95) - 1)],
                statistics.median(cpu[case]),
                os.getloadavg()[0],
            )
            rows.append(row)
            print(
                f"[{backend}] {case}: {row[2]}; cold {row[3]:.0f} ms, warm p50 {row[5]:.0f} ms, "
                f"API CPU p50 {row[7]:.0f} ms (load {row[8]:.1f})",
                flush=True,
            )
    print("\ntimes in ms; API CPU: user + system time of the API process per request (median)")
    print(
        "| backend | request | answer | cold p50 | cold max | warm p50 | warm p95 | API CPU"
        " | load |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.0f} | {r[4]:.0f} | {r[5]:.0f} | {r[6]:.0f}"
            f" | {r[7]:.0f} | {r[8]:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
