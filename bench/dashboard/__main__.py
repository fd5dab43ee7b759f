"""Dashboard benchmark: overview load time in headless Chromium with a year of Bandung-scale data.

Measures navigation start -> every overview figure rendered (numbers and the 90-day trend chart),
cold (fresh browser context, nothing cached) and warm (same context, reload), beside the baseline
of fetching the same figures as JSON from the API directly.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from bench.dashboard.servers import api_args, dashboard_args, serve
from pisman import db
from pisman.rollups import bring_rollups_up_to_date
from pisman.settings import PROJECT_ROOT

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# The overview is "loaded" when the figures are on screen and the trend chart has its data.
RENDERED = """() => {
  const cell = document.querySelector('#ov-day-residual');
  const trend = document.querySelector('#ov-trend .js-plotly-plot');
  return cell && cell.innerText.trim().length > 0 && trend && trend.data && trend.data.length > 0
    ? performance.now() : null;
}"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load_year(url: str, days: int) -> tuple[int, str]:
    """Bandung-scale history (bench/api's loader) for `days` days up to today; returns rows and a key."""
    from bench.api import load
    from pisman.keys import create_key

    scale = load.Scale()
    today = datetime.now(load.TZ).date()
    first = today - timedelta(days=days - 1)
    with psycopg.connect(url) as conn:
        sites = load.seed_city(conn, scale)
        conn.commit()
        rows = load.load_weighings(conn, sites, scale, first, days)
        rows += load.load_bins(conn, scale, today - timedelta(days=1), 2)
        start = datetime.combine(first, datetime.min.time(), load.TZ)
        bring_rollups_up_to_date(conn, start, start + timedelta(days=days + 1))
        key = create_key(conn, role="planner", name="bench-dashboard")
        conn.commit()
    return rows, key


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):7.0f} ms   p90 {_pct(values, 0.9):7.0f} ms   "
        f"max {max(values):7.0f} ms   (n={len(values)})"
    )


BENCH_USER = "bench"
BENCH_PASSWORD = "bench-" + uuid.uuid4().hex  # a fresh one each run; never reused


def _add_bench_user(url: str) -> None:
    """The planner the browser logs in as (the dashboard holds no API key)."""
    from pisman import users

    with psycopg.connect(url) as conn:
        if users.get_user(conn, BENCH_USER) is None:
            users.add_user(conn, username=BENCH_USER, password=BENCH_PASSWORD, role="planner")
        else:
            users.set_password(conn, username=BENCH_USER, password=BENCH_PASSWORD)
            users.set_disabled(conn, username=BENCH_USER, disabled=False)
        conn.commit()


def _measure(dash_url: str, runs: int, screenshot: Path | None) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    cold: list[float] = []
    warm: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        for i in range(runs + 1):  # the first run warms the servers (imports, pools) and is dropped
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            # Log in first (not measured; the login page loads none of Dash's scripts), then the
            # overview's cold load in that fresh context.
            page.goto(dash_url + "/login")
            page.fill("#username", BENCH_USER)
            page.fill("#password", BENCH_PASSWORD)
            page.click("#login-submit")
            page.wait_for_url(dash_url + "/", timeout=30_000)
            page.goto(dash_url + "/")
            elapsed = float(
                page.wait_for_function(RENDERED, timeout=30_000, polling="raf").json_value()
            )
            page.reload()
            warm_ms = float(
                page.wait_for_function(RENDERED, timeout=30_000, polling="raf").json_value()
            )
            if i > 0:
                cold.append(elapsed)
                warm.append(warm_ms)
            if screenshot is not None and i == runs:
                page.wait_for_timeout(1000)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            context.close()
        browser.close()
    return cold, warm


def _baseline(api_url: str, key: str, runs: int) -> list[float]:
    """The same figures fetched as JSON from the API (what the overview callback asks for)."""
    times = []
    with httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=30) as client:
        client.get("/v1/progress", params={"trend_days": 90})
        for _ in range(runs):
            started = time.perf_counter()
            client.get("/v1/meta").raise_for_status()
            client.get("/v1/progress", params={"trend_days": 90}).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--days", type=int, default=365, help="days of history to load (default 365)"
    )
    parser.add_argument("--runs", type=int, default=7, help="measured page loads (default 7)")
    parser.add_argument(
        "--admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where to create the bench DB",
    )
    parser.add_argument(
        "--screenshot", type=Path, default=None, help="save a full-page overview screenshot here"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse-db",
        default=None,
        metavar="NAME",
        help="measure a database kept by an earlier --keep-db run",
    )
    args = parser.parse_args(argv)

    name = args.reuse_db or f"pisman_bench_dash_{uuid.uuid4().hex[:8]}"
    url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    if not args.reuse_db:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        if args.reuse_db:
            from pisman.keys import create_key

            with psycopg.connect(url) as conn:
                key = create_key(conn, role="planner", name="bench-dashboard")
        else:
            db.migrate(url, PROJECT_ROOT / "sql")
            started = time.perf_counter()
            rows, key = _load_year(url, args.days)
            elapsed = time.perf_counter() - started
            print(f"loaded {rows:,} rows ({args.days} days, Bandung scale) in {elapsed:.0f} s")
        _add_bench_user(url)
        api_port, dash_port = _free_port(), _free_port()
        api_url, dash_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
        env = {
            "DATABASE_URL": url,
            "PISMAN_CITY": "bandung",
            "API_URL": api_url,
            "DASHBOARD_REFRESH_S": "600",
            "LOG_LEVEL": "WARNING",
        }
        logs = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
        with (
            serve(
                api_args(api_port),
                env=env,
                ready_url=f"{api_url}/healthz",
                base_url=api_url,
                log=logs / "api.log",
            ),
            serve(
                dashboard_args(dash_port),
                env=env,
                ready_url=f"{dash_url}/_dash-layout",
                base_url=dash_url,
                log=logs / "dashboard.log",
            ),
        ):
            cold, warm = _measure(dash_url, args.runs, args.screenshot)
            baseline = _baseline(api_url, key, args.runs)
        print(f"overview in Chromium, cold (new context): {_summary(cold)}")
        print(f"overview in Chromium, warm (reload):      {_summary(warm)}")
        print(f"baseline: API JSON (meta + progress):     {_summary(baseline)}")
        print(
            f"target: overview under 2000 ms -> {'met' if _pct(cold, 0.9) < 2000 else 'NOT met'} (p90 cold)"
        )
        if args.screenshot:
            print(f"screenshot: {args.screenshot}")
    finally:
        if not args.keep_db and not args.reuse_db:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        else:
            print(f"kept database {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
