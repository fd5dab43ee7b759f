"""Load one year of history on each backend, then time the API's monthly tonnage, progress and XLSX
over HTTP, warm and cold (API process restarted before each cold series), beside the same numbers
computed from raw readings with SQL in the same run; print one table with the backends side by side."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import httpx
import psycopg

from bench.api.load import CITY, TZ, Scale, load_bins, load_weighings, seed_city
from pisman import db, keys
from pisman.rollups import refresh_aggregates, refresh_order, uses_timescaledb
from pisman.settings import PROJECT_ROOT

ADMIN_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "timescaledb": "postgresql://postgres@127.0.0.1:5433/postgres",
}
# The bench loads the year on the schema as it was before the grain tables, then applies the
# remaining migrations: the upgrade (sql/025 filling the grain from a year of readings) is timed
# on every fresh load.
UPGRADE_FROM = 24

# Fate (and separate, collected) tonnage per local day and category straight from raw readings.
RAW_TONNAGE = """
SELECT date_trunc('day', w.ts, %(tz)s) AS day, c.category, sum(c.kg)
FROM weighing w
JOIN site s ON s.site_id = w.site_id
JOIN category_map cm ON cm.city_id = w.city_id AND cm.site_type = s.site_type AND cm.stream = w.stream
 AND cm.material = w.material AND cm.from_own_site = w.from_own_site
CROSS JOIN LATERAL (VALUES (cm.category, w.net_kg * cm.sign),
                           (CASE WHEN cm.separated THEN 'separate' END, w.net_kg),
                           (CASE WHEN %(collected)s AND cm.collected THEN 'collected' END, w.net_kg)) AS c(category, kg)
WHERE w.city_id = %(city)s AND w.ts >= %(start)s AND w.ts < %(end)s AND c.category IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2
"""
# Fate tonnage per group over the month straight from raw readings (landfill loads by their gate).
RAW_BY = """
SELECT {group}, sum(w.net_kg * cm.sign)
FROM weighing w
JOIN site s ON s.site_id = w.site_id
JOIN category_map cm ON cm.city_id = w.city_id AND cm.site_type = s.site_type AND cm.stream = w.stream
 AND cm.material = w.material AND cm.from_own_site = w.from_own_site AND cm.category IS NOT NULL
WHERE w.city_id = %(city)s AND w.ts >= %(start)s AND w.ts < %(end)s
GROUP BY 1 ORDER BY 1
"""
MONTH = date(2026, 10, 1)
NEXT_MONTH = date(2026, 11, 1)
PROGRESS_DAY = date(2026, 10, 31)
END_DAY = date(2026, 11, 1)


@dataclass(frozen=True, slots=True)
class Case:
    """One timed request and, where one exists, its raw-SQL baseline."""

    name: str
    path: str
    params: dict[str, str]
    aim_ms: float | None  # None: a reference row, no aim
    raw: tuple[str, dict[str, object]] | None = None


def _say(backend: str, message: str) -> None:
    print(f"[{backend}] {message}", flush=True)


def _local_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=TZ)


def _cases() -> list[Case]:
    month = {"from": MONTH.isoformat(), "to": NEXT_MONTH.isoformat()}
    raw_month: dict[str, object] = {
        "start": _local_midnight(MONTH),
        "end": _local_midnight(NEXT_MONTH),
    }
    trend_start = PROGRESS_DAY - timedelta(days=89)
    return [
        # The floor: key check, city, JSON, HTTP, no tonnage (what load alone costs a request).
        Case("/v1/meta (reference: no tonnage)", "/v1/meta", {}, None),
        Case(
            "/v1/tonnage month, bucket=day, by category",
            "/v1/tonnage",
            {**month, "bucket": "day", "group_by": "category"},
            50,
            (RAW_TONNAGE, {**raw_month, "collected": False}),
        ),
        Case(
            "/v1/tonnage month, bucket=month, by district",
            "/v1/tonnage",
            {**month, "bucket": "month", "group_by": "district"},
            50,
            (RAW_BY.format(group="s.district_id"), raw_month),
        ),
        Case(
            "/v1/tonnage month, bucket=month, by site",
            "/v1/tonnage",
            {**month, "bucket": "month", "group_by": "site"},
            50,
            (RAW_BY.format(group="s.site_id"), raw_month),
        ),
        Case(
            "/v1/progress (day, month to date, 90-day trend)",
            "/v1/progress",
            {"date": PROGRESS_DAY.isoformat()},
            100,
            (
                RAW_TONNAGE,
                {
                    "start": _local_midnight(min(trend_start, PROGRESS_DAY - timedelta(days=13))),
                    "end": _local_midnight(PROGRESS_DAY + timedelta(days=1)),
                    "collected": True,
                },
            ),
        ),
        Case(
            "/v1/exports/monthly.xlsx (9 sheets)",
            "/v1/exports/monthly.xlsx",
            {"month": MONTH.strftime("%Y-%m")},
            300,
        ),
    ]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(slots=True)
class Figures:
    """One backend's samples per case (seconds)."""

    warm: dict[str, list[float]] = field(default_factory=dict)
    cold: dict[str, list[float]] = field(default_factory=dict)
    first: dict[str, list[float]] = field(default_factory=dict)
    raw: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    check: bool = True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_process(bench_url: str) -> Iterator[str]:
    """A fresh `pisman api` process (one worker, rate limit off) until the block ends."""
    with api_subprocess(bench_url, CITY) as (base, _pid):
        yield base


@contextmanager
def api_subprocess(url: str, city: str) -> Iterator[tuple[str, int]]:
    """A fresh `pisman api` (one worker, rate limit off) on a free port: its base URL and pid
    (for its CPU time) until the block ends."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("API_", "PISMAN_"))},
        "DATABASE_URL": url,
        "PISMAN_CITY": city,
        "LOG_LEVEL": "WARNING",
        "API_RATE_LIMIT_PER_MIN": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pisman", "api", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("pisman api did not start")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            print(f"pisman api exited early with {proc.returncode}", file=sys.stderr)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _load(backend: str, admin_url: str, db_name: str, days: int, bins: int) -> str:
    """A fresh database with the year loaded on the pre-grain schema, then upgraded."""
    bench_url = admin_url.rsplit("/", 1)[0] + "/" + db_name
    first_day = END_DAY - timedelta(days=days)
    scale = Scale(bins=bins)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    with tempfile.TemporaryDirectory() as tmp:
        old_sql = Path(tmp)
        for path in sorted((PROJECT_ROOT / "sql").glob("*.sql")):
            if int(path.name[:3]) <= UPGRADE_FROM:
                shutil.copy(path, old_sql / path.name)
        db.migrate(bench_url, old_sql)
    with psycopg.connect(bench_url) as conn:
        t0 = time.perf_counter()
        sites = seed_city(conn, scale)
        n_w = load_weighings(conn, sites, scale, first_day, days)
        t1 = time.perf_counter()
        print(
            f"[{backend}] loaded {n_w:,} weighings over {days} days in {t1 - t0:.1f} s", flush=True
        )
        n_b = load_bins(conn, scale, first_day, days)
        t2 = time.perf_counter()
        print(f"[{backend}] loaded {n_b:,} bin readings in {t2 - t1:.1f} s", flush=True)
        lo, hi = _local_midnight(first_day), _local_midnight(END_DAY)
        if uses_timescaledb(conn):
            views = conn.execute(
                "SELECT format('%I.%I', c.user_view_schema, c.user_view_name),"
                " CASE WHEN p.mat_hypertable_id IS NOT NULL"
                "  THEN format('%I.%I', p.user_view_schema, p.user_view_name) END"
                " FROM _timescaledb_catalog.continuous_agg c LEFT JOIN"
                " _timescaledb_catalog.continuous_agg p ON p.mat_hypertable_id = c.parent_mat_hypertable_id"
            ).fetchall()
            conn.commit()
            order = refresh_order({str(v): p for v, p in views})
            refresh_aggregates(conn, [(v, hi + timedelta(days=1)) for v in order], lo)
            how = "refresh_continuous_aggregate (" + ", ".join(order) + ")"
        else:
            conn.execute("SELECT pisman_rebuild_rollups(%s, %s)", (lo, hi))
            conn.commit()
            how = "pisman_rebuild_rollups()"
        t3 = time.perf_counter()
        print(f"[{backend}] rollups of the old schema: {how} in {t3 - t2:.1f} s", flush=True)
    t4 = time.perf_counter()
    db.migrate(bench_url, PROJECT_ROOT / "sql", on_progress=partial(_say, backend))
    print(f"[{backend}] upgrade to the current schema in {time.perf_counter() - t4:.1f} s")
    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return bench_url


def _measure(backend: str, bench_url: str, cases: list[Case], args: argparse.Namespace) -> Figures:
    fig = Figures()
    load_before = os.getloadavg()[0]
    with psycopg.connect(bench_url) as conn:
        key = keys.create_key(conn, role="admin", name=f"bench-{time.time_ns()}")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM weighing), (SELECT count(*) FROM weighing_daily),"
            " (SELECT count(*) FROM tonnage_daily_district WHERE bucket >= %(s)s AND bucket < %(e)s),"
            " (SELECT count(*) FROM tonnage_daily_city WHERE bucket >= %(s)s AND bucket < %(e)s),"
            " (SELECT count(*) FROM tonnage_monthly_site WHERE bucket = %(s)s),"
            " (SELECT count(*) FROM weighing_daily WHERE bucket >= %(s)s AND bucket < %(e)s)",
            {"s": _local_midnight(MONTH), "e": _local_midnight(NEXT_MONTH)},
        ).fetchone()
    assert counts is not None
    fig.notes.append(
        f"weighing={counts[0]:,}; rows one month needs: weighing_daily {counts[5]:,}, "
        f"tonnage_daily_district {counts[2]:,}, tonnage_daily_city {counts[3]:,}, "
        f"tonnage_monthly_site {counts[4]:,}"
    )
    headers = {"X-API-Key": key}
    month_rows: list[dict] = []
    # Cold: a fresh API process for each series; its first request is reported apart too.
    for case in cases:
        fig.cold[case.name], fig.first[case.name] = [], []
        for _ in range(args.cold_series):
            with (
                api_process(bench_url) as base,
                httpx.Client(base_url=base, headers=headers, timeout=120) as client,
            ):
                for i in range(args.cold_requests):
                    t = time.perf_counter()
                    client.get(case.path, params=case.params).raise_for_status()
                    elapsed = time.perf_counter() - t
                    (fig.first if i == 0 else fig.cold)[case.name].append(elapsed)
        print(f"[{backend}] cold: {case.name} done", flush=True)
    # Warm: one process, one warm-up request per case.
    with (
        api_process(bench_url) as base,
        httpx.Client(base_url=base, headers=headers, timeout=120) as client,
    ):
        for case in cases:
            r = client.get(case.path, params=case.params)
            r.raise_for_status()
            if case is cases[1]:
                month_rows = r.json()["rows"]
            n = args.requests if (case.aim_ms or 0) < 300 else max(5, args.requests // 5)
            samples = []
            for _ in range(n):
                t = time.perf_counter()
                client.get(case.path, params=case.params).raise_for_status()
                samples.append(time.perf_counter() - t)
            fig.warm[case.name] = samples
    print(f"[{backend}] warm done", flush=True)
    raw_rows: list[tuple] = []
    with psycopg.connect(bench_url) as conn:
        for case in cases:
            if case.raw is None:
                continue
            query, params = case.raw
            samples = []
            for _ in range(args.raw_runs):
                t = time.perf_counter()
                rows = conn.execute(query, {"tz": TZ.key, "city": CITY, **params}).fetchall()
                samples.append(time.perf_counter() - t)
                if case is cases[1]:
                    raw_rows = rows
            fig.raw[case.name] = samples
    fig.notes.append(
        f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after measuring"
    )
    api_total = sum(Decimal(str(r["tonnes"])) for r in month_rows)
    raw_total = sum((Decimal(r[2]) / 1000).quantize(Decimal("0.001")) for r in raw_rows)
    fig.check = api_total == raw_total
    fig.notes.append(
        f"check: month by day and category, API {api_total} t vs raw SQL {raw_total} t "
        f"({'equal' if fig.check else 'DIFFERENT'})"
    )
    return fig


def _ms(samples: list[float] | None, q: float) -> str:
    return f"{_pct(samples, q) * 1000:,.1f}" if samples else "–"


def _table(cases: list[Case], figures: dict[str, Figures]) -> list[str]:
    backends = list(figures)
    head = ["request (aim p95)"]
    for b in backends:
        head += [
            f"{b} warm p50/p95 ms",
            f"{b} cold p50/p95 ms",
            f"{b} 1st after restart ms",
            f"{b} raw SQL p50 ms",
            f"{b} raw/cold p50",
        ]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for case in cases:
        aim = f" (≤ {case.aim_ms:.0f} ms)" if case.aim_ms is not None else ""
        cells = [case.name + aim]
        for b in backends:
            f = figures[b]
            cold = f.cold.get(case.name)
            raw = f.raw.get(case.name)
            met = case.aim_ms is None or (cold and _pct(cold, 0.95) * 1000 <= case.aim_ms)
            ratio = f"{_pct(raw, 0.5) / _pct(cold, 0.5):,.0f}×" if raw and cold else "–"
            cells += [
                f"{_ms(f.warm.get(case.name), 0.5)} / {_ms(f.warm.get(case.name), 0.95)}",
                f"{_ms(cold, 0.5)} / **{_ms(cold, 0.95)}**{'' if met else ' ✗'}",
                _ms(f.first.get(case.name), 0.5),
                _ms(raw, 0.5),
                ratio,
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    p.add_argument(
        "--backends",
        default="postgresql,timescaledb",
        help="comma-separated: postgresql (plain, :5432), timescaledb (:5433)",
    )
    p.add_argument("--postgresql-url", default=ADMIN_URLS["postgresql"])
    p.add_argument("--timescaledb-url", default=ADMIN_URLS["timescaledb"])
    p.add_argument("--db-name", default="pisman_bench_api")
    p.add_argument("--days", type=int, default=365, help="days of history (default one year)")
    p.add_argument(
        "--bins",
        type=int,
        default=20,
        help="bin sensors reporting every 5 minutes (Bandung has hundreds; scaled down)",
    )
    p.add_argument("--requests", type=int, default=30, help="warm requests per endpoint")
    p.add_argument("--cold-series", type=int, default=3, help="API restarts per endpoint")
    p.add_argument(
        "--cold-requests",
        type=int,
        default=8,
        help="requests per cold series (first reported apart)",
    )
    p.add_argument("--raw-runs", type=int, default=3, help="timed runs of each raw-SQL baseline")
    p.add_argument(
        "--reuse", action="store_true", help="reuse the bench database where one is loaded"
    )
    args = p.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ADMIN_URLS]
    if unknown or not backends:
        p.error(f"--backends: choose from postgresql, timescaledb (got {args.backends!r})")
    if not 1 <= args.days <= 3660 or args.requests < 1 or args.cold_series < 1:
        p.error("--days 1..3660, --requests and --cold-series at least 1")
    if args.cold_requests < 2:
        p.error("--cold-requests must be at least 2 (the first is reported apart)")
    admin = {"postgresql": args.postgresql_url, "timescaledb": args.timescaledb_url}
    cases = _cases()
    figures: dict[str, Figures] = {}
    for backend in backends:
        url = db.redact(admin[backend])
        bench_url = admin[backend].rsplit("/", 1)[0] + "/" + args.db_name
        with psycopg.connect(admin[backend], autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (args.db_name,)
            ).fetchone()
        if args.reuse and exists:
            # Migrations added since the load apply now (and say what they did).
            db.migrate(bench_url, PROJECT_ROOT / "sql", on_progress=partial(_say, backend))
        else:
            bench_url = _load(backend, admin[backend], args.db_name, args.days, args.bins)
        with psycopg.connect(bench_url) as conn:
            kind = db.storage_kind(conn)
        if kind != backend:
            p.error(f"{url} built the {kind} schema, not {backend}")
        figures[backend] = _measure(backend, bench_url, cases, args)
    print()
    print(
        f"cold = a fresh `pisman api` process for each of {args.cold_series} series of "
        f"{args.cold_requests} requests (the first of each series in its own column, the other "
        f"{args.cold_requests - 1} in 'cold'); warm = one process after a warm-up request; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    for line in _table(cases, figures):
        print(line)
    for backend, fig in figures.items():
        for note in fig.notes:
            print(f"[{backend}] {note}")
    return 0 if all(f.check for f in figures.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
