"""API under a query flood: /healthz and /v1/meta latency while one viewer key keeps 16 three-year
tonnage queries in flight, beside the same probes on the idle API in the same run.

    python -m bench.api_flood            # loads a small city (3 years), then two API setups

Each setup is `pisman api` in its own process(es). "limits off" approximates the API before the
limits (16 heavy slots so every flood query runs at once, no rate limit, no useful statement
timeout, one worker); "defaults" is what ships (one heavy query at a time per worker, 1200
requests a minute per key, 15 s statement timeout) with --workers 2. The flood runs in a separate process
(asyncio, one connection per in-flight query) so the probes' timings are not skewed by it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from multiprocessing.queues import Queue

import httpx
import psycopg

from bench.api.load import CITY, TZ, Scale, load_weighings, seed_city
from pisman import db, keys
from pisman.rollups import bring_rollups_up_to_date
from pisman.settings import PROJECT_ROOT
from tests.support.broker import free_port

GROUPS = ("category", "district", "site", "material", "site_type")
SMALL_CITY = Scale(
    districts=8,
    depots=40,
    waste_banks=60,
    hubs=1,
    facilities=5,
    bins=0,
    landfill_trips_per_day=40,
    depot_loads_per_day=4,
    deposits_per_bank_per_day=4,
    facility_loads_per_day=6,
)


@dataclass(frozen=True, slots=True)
class Setup:
    """One way of running the API."""

    name: str
    workers: int
    env: dict[str, str]


SETUPS = (
    Setup(
        "limits off, 1 worker",
        1,
        {
            "API_MAX_HEAVY_QUERIES": "16",
            "API_HEAVY_QUEUE_S": "600",
            "API_RATE_LIMIT_PER_MIN": "0",
            "API_STATEMENT_TIMEOUT_S": "600",
            "API_POOL_TIMEOUT_S": "600",
        },
    ),
    Setup("defaults, --workers 2", 2, {}),
)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _local_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=TZ)


def load(admin_url: str, db_name: str, days: int, end_day: date) -> str:
    """A fresh database with `days` of a small city's weighings and rollups; returns its URL."""
    bench_url = admin_url.rsplit("/", 1)[0] + "/" + db_name
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    db.migrate(bench_url, PROJECT_ROOT / "sql")
    first_day = end_day - timedelta(days=days)
    started = time.perf_counter()
    with psycopg.connect(bench_url) as conn:
        sites = seed_city(conn, SMALL_CITY)
        rows = load_weighings(conn, sites, SMALL_CITY, first_day, days)
        # Either backend: rebuild on PostgreSQL, refresh the continuous aggregates on TimescaleDB.
        bring_rollups_up_to_date(conn, _local_midnight(first_day), _local_midnight(end_day))
        conn.commit()
    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(
        f"loaded {rows:,} weighings over {days} days ({len(sites)} sites) and rolled them up "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return bench_url


@contextmanager
def api_process(bench_url: str, setup: Setup) -> Iterator[str]:
    """`pisman api --workers N` on a free port until the block ends; yields its base URL."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("API_", "PISMAN_"))},
        "DATABASE_URL": bench_url,
        "PISMAN_CITY": CITY,
        "LOG_LEVEL": "WARNING",
        **setup.env,
    }
    command = [sys.executable, "-m", "pisman", "api", "--workers", str(setup.workers)]
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pisman api did not start ({setup.name})")
            time.sleep(0.2)
        time.sleep(1.0 * setup.workers)  # every worker up, not only the first
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass(slots=True)
class FloodReport:
    """What the flooding client saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    ok_seconds: list[float] = field(default_factory=list)


async def _flood(
    base: str, key: str, concurrency: int, seconds: float, start: date, end: date, polite: bool
) -> FloodReport:
    report = FloodReport()
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, timeout=600, limits=limits
    ) as client:

        async def one_lane(lane: int) -> None:
            i = lane
            while time.monotonic() < stop_at:
                params = {
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "bucket": "day",
                    "group_by": GROUPS[i % len(GROUPS)],
                }
                i += 1
                started = time.monotonic()
                try:
                    response = await client.get("/v1/tonnage", params=params)
                except httpx.HTTPError:
                    report.statuses[0] += 1
                    continue
                report.statuses[response.status_code] += 1
                if response.status_code == 200:
                    report.ok_seconds.append(time.monotonic() - started)
                elif polite and "retry-after" in response.headers:
                    await asyncio.sleep(min(float(response.headers["retry-after"]), 1.0))

        await asyncio.gather(*(one_lane(n) for n in range(concurrency)))
    return report


def flood_main(
    base: str,
    key: str,
    concurrency: int,
    seconds: float,
    start: date,
    end: date,
    polite: bool,
    out: Queue[FloodReport],
) -> None:
    """The flooding client (its own process)."""
    out.put(asyncio.run(_flood(base, key, concurrency, seconds, start, end, polite)))


def probe(base: str, key: str, seconds: float, pause_s: float = 0.05) -> dict[str, list[float]]:
    """/healthz and /v1/meta one after the other for `seconds`; latencies of 200 answers."""
    samples: dict[str, list[float]] = {"/healthz": [], "/v1/meta": [], "failed": []}
    stop_at = time.monotonic() + seconds
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
        while time.monotonic() < stop_at:
            for path in ("/healthz", "/v1/meta"):
                started = time.perf_counter()
                try:
                    ok = client.get(path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - started
                samples[path if ok else "failed"].append(elapsed)
            time.sleep(pause_s)
    return samples


def _line(label: str, samples: list[float]) -> str:
    return (
        f"  {label:<22} n={len(samples):<5} p50={_pct(samples, 0.5) * 1000:8.1f} ms  "
        f"p99={_pct(samples, 0.99) * 1000:8.1f} ms  max={max(samples, default=0) * 1000:8.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    """Load the data, then run every setup idle and under the flood; print the figures."""
    p = argparse.ArgumentParser(prog="python -m bench.api_flood", description=__doc__)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--db-name", default="pisman_bench_flood")
    p.add_argument("--days", type=int, default=1096, help="days of history (default 3 years)")
    p.add_argument("--reuse", action="store_true", help="reuse an already loaded database")
    p.add_argument("--concurrency", type=int, default=16, help="tonnage queries kept in flight")
    p.add_argument("--idle-s", type=float, default=8, help="seconds of probes on the idle API")
    p.add_argument("--flood-s", type=float, default=25, help="seconds of probes under the flood")
    p.add_argument(
        "--impolite", action="store_true", help="the flood ignores Retry-After (retries at once)"
    )
    p.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = p.parse_args(argv)

    end_day = date(2026, 11, 1)
    if args.reuse:
        bench_url = args.admin_url.rsplit("/", 1)[0] + "/" + args.db_name
    else:
        bench_url = load(args.admin_url, args.db_name, args.days, end_day)
    with psycopg.connect(bench_url) as conn:
        flood_key = keys.create_key(conn, role="viewer", name="flood")
        probe_key = keys.create_key(conn, role="viewer", name="probe")
    span = (end_day - timedelta(days=args.days), end_day)
    print(
        f"flood: {args.concurrency} concurrent GET /v1/tonnage {span[0]}..{span[1]} bucket=day "
        f"(group_by rotating {', '.join(GROUPS)}), one viewer key, "
        f"{'ignoring' if args.impolite else 'honouring (up to 1 s)'} Retry-After; "
        f"probes: /healthz then /v1/meta every 50 ms with another key",
        flush=True,
    )
    ctx = multiprocessing.get_context("spawn")
    try:
        for setup in SETUPS:
            with api_process(bench_url, setup) as base:
                probe(base, probe_key, 1.0)  # warm the probes' connection and the label queries
                idle = probe(base, probe_key, args.idle_s)
                out: Queue[FloodReport] = ctx.Queue()
                flooder = ctx.Process(
                    target=flood_main,
                    args=(
                        *(base, flood_key, args.concurrency, args.flood_s + 2),
                        *(*span, not args.impolite, out),
                    ),
                )
                flooder.start()
                time.sleep(2.0)  # the flood is in full swing before the probes start
                busy = probe(base, probe_key, args.flood_s)
                report = out.get(timeout=900)
                flooder.join(timeout=60)
            print(f"\n{setup.name}:")
            print(_line("/healthz idle", idle["/healthz"]))
            print(_line("/healthz flood", busy["/healthz"]))
            print(_line("/v1/meta idle", idle["/v1/meta"]))
            print(_line("/v1/meta flood", busy["/v1/meta"]))
            failed = len(idle["failed"]) + len(busy["failed"])
            statuses = ", ".join(f"{k or 'error'}: {v}" for k, v in sorted(report.statuses.items()))
            print(f"  probe answers other than 200: {failed}")
            print(f"  flood answers: {statuses}")
            print(_line("flood 200 answers", report.ok_seconds))
    finally:
        if not args.keep and not args.reuse:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
