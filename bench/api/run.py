"""Load one year of history, then time the API's monthly tonnage, progress and XLSX export over HTTP
beside the same numbers computed from raw readings with SQL in the same run."""

from __future__ import annotations

import argparse
import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import uvicorn

from api import keys
from api.app import create_app
from api.queries.tonnage_cache import CACHE
from bench.api.load import CITY, TZ, Scale, load_bins, load_weighings, seed_city
from pisman import db
from pisman.rollups import bring_rollups_up_to_date
from pisman.settings import PROJECT_ROOT, Settings

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


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _fmt(name: str, samples: list[float]) -> str:
    return f"{name:<58} n={len(samples):<4} p50={_pct(samples, 0.5) * 1000:8.1f} ms  p95={_pct(samples, 0.95) * 1000:8.1f} ms"


def _local_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=TZ)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    p.add_argument(
        "--admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server to create the bench database on",
    )
    p.add_argument("--db-name", default="pisman_bench_api")
    p.add_argument("--days", type=int, default=365, help="days of history (default one year)")
    p.add_argument(
        "--bins",
        type=int,
        default=20,
        help="bin sensors reporting every 5 minutes (Bandung has hundreds; scaled down)",
    )
    p.add_argument("--requests", type=int, default=50, help="timed requests per endpoint")
    p.add_argument("--raw-runs", type=int, default=5, help="timed runs of each raw-SQL baseline")
    p.add_argument("--reuse", action="store_true", help="reuse an already loaded bench database")
    args = p.parse_args(argv)

    url = db.redact(args.admin_url)  # validate
    bench_url = args.admin_url.rsplit("/", 1)[0] + "/" + args.db_name
    end_day = date(2026, 11, 1)
    first_day = end_day - timedelta(days=args.days)
    scale = Scale(bins=args.bins)

    if not args.reuse:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{args.db_name}"')
        db.migrate(bench_url, PROJECT_ROOT / "sql")
        with psycopg.connect(bench_url) as conn:
            t0 = time.perf_counter()
            sites = seed_city(conn, scale)
            n_w = load_weighings(conn, sites, scale, first_day, args.days)
            t1 = time.perf_counter()
            print(f"loaded {n_w:,} weighings over {args.days} days in {t1 - t0:.1f} s", flush=True)
            n_b = load_bins(conn, scale, first_day, args.days)
            t2 = time.perf_counter()
            print(
                f"loaded {n_b:,} bin readings ({args.bins} bins every 5 min) in {t2 - t1:.1f} s",
                flush=True,
            )
            bring_rollups_up_to_date(conn, _local_midnight(first_day), _local_midnight(end_day))
            conn.commit()
            t3 = time.perf_counter()
            print(f"rebuilt rollups in {t3 - t2:.1f} s", flush=True)
        with psycopg.connect(bench_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    with psycopg.connect(bench_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM weighing), (SELECT count(*) FROM bin_reading), (SELECT count(*) FROM weighing_daily),"
            " (SELECT count(*) FROM weighing_hourly), (SELECT sum(net_kg) FROM weighing WHERE stream = 'to_landfill' AND site_id = 'tpa-sarimukti') / 1000 / %s",
            (args.days,),
        ).fetchone()
        key = keys.create_key(conn, role="admin", name="bench")
    assert counts is not None
    print(
        f"database {url.rsplit('/', 1)[0]}/{args.db_name}: weighing={counts[0]:,} bin_reading={counts[1]:,} "
        f"weighing_daily={counts[2]:,} weighing_hourly={counts[3]:,}; landfill {counts[4]:.0f} t/day"
    )

    port = 18000 + (int(time.time()) % 1000)
    app = create_app(Settings(DATABASE_URL=bench_url, PISMAN_CITY=CITY))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)

    month = date(2026, 10, 1)
    next_month = date(2026, 11, 1)
    progress_day = date(2026, 10, 31)
    results: list[str] = []
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:

        def timed(path: str, query: dict[str, str], n: int) -> tuple[list[float], httpx.Response]:
            r = client.get(path, params=query)
            r.raise_for_status()
            samples = []
            for _ in range(n):
                t = time.perf_counter()
                r = client.get(path, params=query)
                samples.append(time.perf_counter() - t)
                r.raise_for_status()
            return samples, r

        def cold(path: str, query: dict[str, str], n: int) -> list[float]:
            """Each request with the closed-day cache emptied first (after a restart, or late
            data for every month the request covers)."""
            samples = []
            for _ in range(n):
                CACHE.clear()
                t = time.perf_counter()
                client.get(path, params=query).raise_for_status()
                samples.append(time.perf_counter() - t)
            return samples

        q_month = {
            "from": month.isoformat(),
            "to": next_month.isoformat(),
            "bucket": "day",
            "group_by": "category",
        }
        s, r_month = timed("/v1/tonnage", q_month, args.requests)
        results.append(_fmt("API GET /v1/tonnage month, bucket=day, by category", s))
        s, _ = timed(
            "/v1/tonnage", {**q_month, "bucket": "month", "group_by": "district"}, args.requests
        )
        results.append(_fmt("API GET /v1/tonnage month, bucket=month, by district", s))
        s, _ = timed(
            "/v1/tonnage", {**q_month, "bucket": "month", "group_by": "site"}, args.requests
        )
        results.append(_fmt("API GET /v1/tonnage month, bucket=month, by site", s))
        s, _ = timed("/v1/progress", {"date": progress_day.isoformat()}, args.requests)
        results.append(_fmt("API GET /v1/progress (day, month to date, 90-day trend)", s))
        s, r_x = timed(
            "/v1/exports/monthly.xlsx",
            {"month": month.strftime("%Y-%m")},
            max(3, args.requests // 10),
        )
        results.append(
            _fmt(f"API GET /v1/exports/monthly.xlsx ({len(r_x.content) / 1024:.0f} KiB)", s)
        )
        s, _ = timed(
            "/v1/exports/monthly.csv",
            {"month": month.strftime("%Y-%m"), "group_by": "site"},
            max(3, args.requests // 10),
        )
        results.append(_fmt("API GET /v1/exports/monthly.csv by site", s))
        n_cold = max(5, args.requests // 5)
        results.append(
            _fmt(
                "cold: /v1/tonnage month, bucket=day, by category",
                cold("/v1/tonnage", q_month, n_cold),
            )
        )
        results.append(
            _fmt(
                "cold: /v1/tonnage month, bucket=month, by district",
                cold("/v1/tonnage", {**q_month, "bucket": "month", "group_by": "district"}, n_cold),
            )
        )
        results.append(
            _fmt(
                "cold: /v1/progress (90-day trend)",
                cold("/v1/progress", {"date": progress_day.isoformat()}, n_cold),
            )
        )
        results.append(
            _fmt(
                "cold: /v1/exports/monthly.xlsx",
                cold("/v1/exports/monthly.xlsx", {"month": month.strftime("%Y-%m")}, 3),
            )
        )
        results.append(f"closed-day cache: {CACHE.hits} hits, {CACHE.misses} misses")

    with psycopg.connect(bench_url) as conn:

        def raw(
            start: date, end: date, collected: bool
        ) -> tuple[list[float], list[tuple[datetime, str, Decimal]]]:
            samples = []
            rows: list = []
            for _ in range(args.raw_runs):
                t = time.perf_counter()
                rows = conn.execute(
                    RAW_TONNAGE,
                    {
                        "tz": TZ.key,
                        "city": CITY,
                        "start": _local_midnight(start),
                        "end": _local_midnight(end),
                        "collected": collected,
                    },
                ).fetchall()
                samples.append(time.perf_counter() - t)
            return samples, rows

        s, rows = raw(month, next_month, False)
        results.append(_fmt("raw SQL: same month by day and category from weighing", s))
        trend_start = progress_day - timedelta(days=89)
        s, _ = raw(
            min(trend_start, progress_day - timedelta(days=13)),
            progress_day + timedelta(days=1),
            True,
        )
        results.append(_fmt("raw SQL: progress's 90-day daily series from weighing", s))
    api_total = sum(Decimal(str(r["tonnes"])) for r in r_month.json()["rows"])
    raw_total = sum((Decimal(r[2]) / 1000).quantize(Decimal("0.001")) for r in rows)
    server.should_exit = True
    thread.join(timeout=10)
    print()
    for line in results:
        print(line)
    print(
        f"check: month by day and category, API sum {api_total} t vs raw SQL sum {raw_total} t "
        f"({'equal' if api_total == raw_total else 'DIFFERENT'})"
    )
    return 0 if api_total == raw_total else 1


if __name__ == "__main__":
    raise SystemExit(main())
