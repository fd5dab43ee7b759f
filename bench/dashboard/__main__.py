"""Dashboard benchmark: overview load time in headless Chromium with a year of Bandung-scale data.

Measures navigation start -> every overview figure rendered (numbers and the 90-day trend chart:
its still picture, or Plotly's chart if that comes first; also when Plotly's chart is up),
after login, cold (fresh browser context, nothing cached: the login is posted through the
context's own HTTP client, so no page has loaded Dash's scripts before the measured load) and warm
(same context, reload), beside the baseline of fetching the same figures as JSON from the API
directly. With --detail, where the last cold load's time went (Resource Timing).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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
# Aims (issue 14): data on screen within 1 s cold and 500 ms warm (median of the runs).
COLD_AIM_MS = 1000.0
WARM_AIM_MS = 500.0
# The overview is "loaded" when the figures are on screen and the trend shows its data: the
# first view's still picture of it decoded (dashboard/charts.py), or Plotly's chart with its data.
RENDERED = """() => {
  const cell = document.querySelector('#ov-day-residual');
  const picture = document.querySelector('#ov-trend-picture');
  const trend = document.querySelector('#ov-trend .js-plotly-plot');
  const drawn = (picture && picture.complete && picture.naturalHeight > 0)
    || (trend && trend.data && trend.data.length > 0);
  return cell && cell.innerText.trim().length > 0 && drawn ? performance.now() : null;
}"""
# Plotly's chart drawn over the picture: when the page can be explored as well as read.
INTERACTIVE = """() => {
  const trend = document.querySelector('#ov-trend .js-plotly-plot');
  return trend && trend.data && trend.data.length > 0 && trend.querySelector('.main-svg')
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
BENCH_PASSWORD = "uji-" + uuid.uuid4().hex  # a fresh one each run (never the user name in it)


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


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')

# Where a load's time went: the page's own milestones and its slowest requests.
TIMELINE = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource').map(r => ({
    name: r.name.replace(location.origin, '').slice(0, 70), start: r.startTime, end: r.responseEnd,
    kb: r.encodedBodySize / 1024,
    server: (r.serverTiming || []).map(s => `${s.name}${s.description ? ' ' + s.description : ''} ${Math.round(s.duration)}`).join(', ')}));
  return {dom: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, resources: res};
}"""


def _log_in(context: Any, dash_url: str) -> None:
    """Log in through the context's HTTP client (its cookies are the pages'), loading no page."""
    form = context.request.get(dash_url + "/login")
    match = CSRF_FIELD.search(form.text())
    if match is None:
        raise RuntimeError("no CSRF field on the login page")
    answer = context.request.post(
        dash_url + "/login",
        form={"csrf": match.group(1), "username": BENCH_USER, "password": BENCH_PASSWORD},
        max_redirects=0,
    )
    if answer.status != 303:
        raise RuntimeError(f"login answered {answer.status}: {answer.text()[:200]}")


def _print_timeline(timeline: dict[str, Any], rendered_ms: float) -> None:
    print(
        f"  last cold load: DOMContentLoaded {timeline['dom']:.0f} ms, load event "
        f"{timeline['load']:.0f} ms, figures and chart on screen {rendered_ms:.0f} ms"
    )
    for r in sorted(timeline["resources"], key=lambda r: r["end"]):
        print(f"  {r['start']:6.0f} -> {r['end']:6.0f} ms  {r['kb']:7.0f} kB  {r['name']}")
        if r["server"]:  # the dashboard's Server-Timing: its own time and each API call's
            print(f"  {'':28s}server: {r['server']}")


def _measure(
    dash_url: str, runs: int, screenshot: Path | None, *, detail: bool
) -> tuple[list[float], list[float], list[float]]:
    """Cold and warm load times (figures and trend on screen), and when the cold load's trend
    became Plotly's interactive chart."""
    from playwright.sync_api import sync_playwright

    cold: list[float] = []
    warm: list[float] = []
    interactive: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        for i in range(runs + 1):  # the first run warms the servers (imports, pools) and is dropped
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            _log_in(context, dash_url)  # not measured; no page has loaded yet
            page = context.new_page()
            page.goto(dash_url + "/")
            elapsed = float(
                page.wait_for_function(RENDERED, timeout=30_000, polling="raf").json_value()
            )
            explorable = float(
                page.wait_for_function(INTERACTIVE, timeout=30_000, polling="raf").json_value()
            )
            timeline = page.evaluate(TIMELINE) if detail and i == runs else None
            page.reload()
            warm_ms = float(
                page.wait_for_function(RENDERED, timeout=30_000, polling="raf").json_value()
            )
            if i > 0:
                cold.append(elapsed)
                warm.append(warm_ms)
                interactive.append(explorable)
            if timeline is not None:
                _print_timeline(timeline, elapsed)
            if screenshot is not None and i == runs:
                page.wait_for_timeout(1000)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            context.close()
        browser.close()
    return cold, warm, interactive


def _baseline(api_url: str, key: str, runs: int) -> list[float]:
    """The same figures fetched as JSON from the API: what the overview callback asks for (labels,
    today's progress, the trend's 90 days by day and category)."""
    from bench.api import load

    today = datetime.now(load.TZ).date()
    trend = {
        "from": (today - timedelta(days=89)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
        "bucket": "day",
        "group_by": "category",
    }
    times = []
    with httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=30) as client:
        client.get("/v1/progress", params={"trend_days": 1})
        for _ in range(runs):
            started = time.perf_counter()
            client.get("/v1/meta").raise_for_status()
            client.get("/v1/progress", params={"trend_days": 1}).raise_for_status()
            client.get("/v1/tonnage", params=trend).raise_for_status()
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
        "--detail", action="store_true", help="print where the last cold load's time went"
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="worker processes of the API (API_WORKERS; default 1, as `pisman up`)",
    )
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
        with psycopg.connect(url, autocommit=True) as conn:
            # Planner statistics, as autovacuum would keep them (it may be off on test servers).
            conn.execute("ANALYZE")
        api_port, dash_port = _free_port(), _free_port()
        api_url, dash_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
        env = {
            "DATABASE_URL": url,
            "PISMAN_CITY": "bandung",
            "API_URL": api_url,
            "DASHBOARD_REFRESH_S": "600",
            "LOG_LEVEL": "WARNING",
            "API_WORKERS": str(args.api_workers),
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
            cold, warm, interactive = _measure(
                dash_url, args.runs, args.screenshot, detail=args.detail
            )
            baseline = _baseline(api_url, key, args.runs)
        print(f"overview in Chromium, cold (new context): {_summary(cold)}")
        print(f"overview in Chromium, warm (reload):      {_summary(warm)}")
        print(f"cold, until Plotly's chart is drawn:      {_summary(interactive)}")
        print(f"baseline: API JSON (meta+progress+trend): {_summary(baseline)}")
        for kind, values, aim in (("cold", cold, COLD_AIM_MS), ("warm", warm, WARM_AIM_MS)):
            met = "met" if statistics.median(values) <= aim else "NOT met"
            print(f"aim: {kind} overview <= {aim:.0f} ms (median) -> {met}")
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
