"""The dashboard in a real headless Chromium against the real API and a seeded PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import psycopg
import pytest

from bench.dashboard.seed import ZONE, SeededCity, seed_bins, seed_city, seed_weighings
from bench.dashboard.servers import Server, api_args, dashboard_args, serve
from dashboard import format as fmt
from pisman import users
from tests.support.broker import free_port

pytestmark = pytest.mark.browser

PASSWORD = "Sampah-Bandung-2026"
USERS = {"vina": "viewer", "pandu": "planner", "lola": "viewer", "budi": "viewer"}

# MapLibre's software WebGL reports slow ReadPixels as a console *warning*; only errors count.
TIMEOUT_MS = 15_000


@dataclass(frozen=True, slots=True)
class Stack:
    """The servers under test and what was seeded."""

    api: Server
    dashboard: Server
    empty_dashboard: Server
    dead_api_dashboard: Server
    key: str
    city: SeededCity
    fills: dict[str, float]
    db_url: str

    def api_get(self, path: str, **params: Any) -> Any:
        """The API's own answer, to compare with what the page shows."""
        response = httpx.get(
            f"{self.api.url}{path}",
            params={"city": self.city.city_id, **params},
            headers={"X-API-Key": self.key},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def stack(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A seeded city (40 days of weighings, bins), an empty city, the API and three dashboards."""
    from pisman.keys import create_key

    logs = tmp_path_factory.mktemp("dashboard-logs")
    today = datetime.now(ZONE).date()
    with psycopg.connect(module_db_url) as conn:
        city = seed_city(conn, city_id="testville")
        seed_weighings(conn, city, first_day=today - timedelta(days=39), days=40)
        fills = seed_bins(conn, city)
        seed_city(conn, city_id="emptyville", districts=1, depots_per_district=1, bins_per_depot=0)
        key = create_key(conn, role="planner", name="dashboard-test")  # the test's own reads
        for username, role in USERS.items():
            users.add_user(conn, username=username, password=PASSWORD, role=role)
    api_port, dash_port, empty_port, dead_port = free_port(), free_port(), free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    # No API key for the dashboards: each user's requests carry that user's session. One data
    # dir, so the three dashboards share the cookie's signing key (cookies ignore the port).
    base_env = {
        "DATABASE_URL": module_db_url,
        "API_URL": api_url,
        "LOG_LEVEL": "WARNING",
        "PISMAN_DATA_DIR": str(tmp_path_factory.mktemp("dashboard-data")),
    }

    def dashboard(port: int, name: str, **env: str) -> Any:
        url = f"http://127.0.0.1:{port}"
        return serve(
            dashboard_args(port),
            env={**base_env, "PISMAN_CITY": "testville", "DASHBOARD_REFRESH_S": "2", **env},
            ready_url=f"{url}/_dash-layout",
            base_url=url,
            log=logs / f"{name}.log",
        )

    with (
        serve(
            api_args(api_port),
            env={**base_env, "PISMAN_CITY": "testville"},
            ready_url=f"{api_url}/healthz",
            base_url=api_url,
            log=logs / "api.log",
        ) as api,
        dashboard(dash_port, "dashboard") as dash,
        dashboard(empty_port, "empty", PISMAN_CITY="emptyville") as empty,
        dashboard(dead_port, "dead", API_URL=f"http://127.0.0.1:{free_port()}") as dead,
    ):
        yield Stack(api, dash, empty, dead, key, city, fills, module_db_url)


@dataclass(slots=True)
class Tab:
    """A page in a fresh browser context (Indonesian default) with its console errors."""

    page: Any
    errors: list[str]

    def open(self, url: str, ready: str) -> None:
        """Navigate and wait until `ready` is visible."""
        self.page.goto(url)
        self.page.wait_for_selector(ready, timeout=TIMEOUT_MS)

    def plot(self, graph_id: str, expression: str) -> Any:
        """Evaluate `expression` on the drawn Plotly figure (`el`) of dcc.Graph graph_id, retrying
        while the live refresh redraws it."""
        script = (
            "s => { try { const el = document.querySelector(s); const v = " + expression + ";"
            " return v === undefined ? null : {v}; } catch (e) { return null; } }"
        )
        handle = self.page.wait_for_function(
            script, arg=f"#{graph_id} .js-plotly-plot", timeout=TIMEOUT_MS
        )
        return handle.json_value()["v"]

    def text(self, selector: str) -> str:
        """The visible text of one element."""
        return str(self.page.inner_text(selector, timeout=TIMEOUT_MS)).strip()


def fresh_tab(browser: Any) -> tuple[Any, Tab]:
    """A fresh context (empty localStorage, no cookie) and page collecting console errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return context, Tab(page, errors)


def log_in(tab: Tab, url: str, username: str, password: str = PASSWORD) -> None:
    """Fill the login form of the dashboard at `url` and submit it."""
    tab.page.goto(url + "/login")
    tab.page.fill("#username", username)
    tab.page.fill("#password", password)
    tab.page.click("#login-submit")
    tab.page.wait_for_load_state()


@pytest.fixture
def tab(browser: Any, stack: Stack) -> Iterator[Tab]:
    """A fresh context logged in as a planner; collects console and page errors."""
    context, tab = fresh_tab(browser)
    log_in(tab, stack.dashboard.url, "pandu")
    tab.page.wait_for_url(stack.dashboard.url + "/", timeout=TIMEOUT_MS)
    yield tab
    context.close()


@pytest.fixture
def anonymous(browser: Any) -> Iterator[Tab]:
    """A fresh context, not logged in."""
    context, tab = fresh_tab(browser)
    yield tab
    context.close()


def test_every_page_loads_without_browser_console_errors(stack: Stack, tab: Tab) -> None:
    pages = {
        "/": "#ov-trend .js-plotly-plot",
        "/districts": "#districts-map .js-plotly-plot",
        "/bins": "#bins-table",
        "/reports": "#report-table",
    }
    for path, ready in pages.items():
        tab.open(stack.dashboard.url + path, ready)
        assert tab.page.locator(".state-error").count() == 0, path
        tab.page.wait_for_timeout(300)  # let late errors (chart rendering) surface
    assert tab.errors == []


def test_overview_shows_the_apis_figures_for_today_and_month_to_date(
    stack: Stack, tab: Tab
) -> None:
    tab.open(stack.dashboard.url + "/", "#ov-day-reduce")
    progress = stack.api_get("/v1/progress")
    assert progress["day"]["collected_t"] > 0
    for code in ("reduce", "utilize", "residual"):
        day = progress["day"]["categories"][code]
        assert tab.text(f"#ov-day-{code}") == fmt.tonnes(day["tonnes"], "id")
        assert tab.text(f"#ov-day-{code}-target") == fmt.tonnes(day["target_t"], "id")
        assert tab.text(f"#ov-mtd-{code}") == fmt.tonnes(
            progress["month_to_date"]["categories"][code]["tonnes"], "id"
        )
    separate = progress["day"]["categories"]["separate"]
    assert tab.text("#ov-day-separate") == fmt.percent(separate["share_of_collected"], "id")
    assert tab.text("#ov-day-collected") == fmt.tonnes(progress["day"]["collected_t"], "id")
    assert tab.text("#ov-day-diverted-share") == fmt.percent(
        progress["day"]["diverted_share"], "id"
    )
    assert "1.500 t" in tab.text("#ov-generation")
    assert tab.text("#ov-mtd-collected") == fmt.tonnes(
        progress["month_to_date"]["collected_t"], "id"
    )
    # The 90-day trend is drawn with one bar per day per fate.
    bars = tab.plot("ov-trend", "el.data.map(t => t.x.length)")
    assert bars == [90, 90, 90, 90]
    assert tab.errors == []


def test_overview_refreshes_live_without_reloading(stack: Stack, tab: Tab) -> None:
    tab.open(stack.dashboard.url + "/", "#ov-day-residual")
    before = tab.text("#ov-day-residual")
    tab.page.evaluate("window.__not_reloaded = true")
    landfill = next(s for s in stack.city.sites if s.site_type == "landfill")
    now = datetime.now(ZONE)
    with psycopg.connect(stack.db_url) as conn:
        conn.execute(
            "INSERT INTO weighing (ts, city_id, site_id, device_id, seq, net_kg, material, stream)"
            " VALUES (%s, %s, %s, %s, 999999, 7000, 'residual', 'to_landfill')",
            (now, stack.city.city_id, landfill.site_id, landfill.scale_id),
        )
        conn.execute("SELECT pisman_refresh_weighing_rollups(%s, %s)", ([landfill.site_id], [now]))
    expected = fmt.tonnes(
        stack.api_get("/v1/progress")["day"]["categories"]["residual"]["tonnes"], "id"
    )
    assert expected != before
    tab.page.wait_for_function(
        "t => document.querySelector('#ov-day-residual')?.innerText.trim() === t",
        arg=expected,
        timeout=TIMEOUT_MS,
    )
    assert tab.page.evaluate("window.__not_reloaded") is True
    assert tab.errors == []


def test_language_switch_changes_labels_and_number_format(stack: Stack, tab: Tab) -> None:
    tab.open(stack.dashboard.url + "/", "#ov-day-residual")
    residual = stack.api_get("/v1/progress")["day"]["categories"]["residual"]["tonnes"]
    assert tab.text("#nav-overview") == "Ringkasan"
    assert tab.text("#ov-day-residual") == fmt.tonnes(residual, "id")
    assert "," in fmt.tonnes(residual, "id") and "." in fmt.tonnes(residual, "en")

    tab.page.click("#lang-toggle")
    tab.page.wait_for_function(
        "() => document.querySelector('#nav-overview').innerText.trim() === 'Overview'"
    )
    tab.page.wait_for_function(
        "t => document.querySelector('#ov-day-residual')?.innerText.trim() === t",
        arg=fmt.tonnes(
            stack.api_get("/v1/progress")["day"]["categories"]["residual"]["tonnes"], "en"
        ),
        timeout=TIMEOUT_MS,
    )
    assert tab.text("#card-residual .card-title") == "Residual to landfill"
    # The choice survives a reload (localStorage) and applies on other pages.
    tab.open(stack.dashboard.url + "/reports", "#report-table")
    tab.page.wait_for_function(
        "() => document.querySelector('#download-csv').innerText.trim() === 'Download CSV'"
    )
    assert tab.page.evaluate("document.documentElement.lang") == "en"
    assert tab.errors == []


def test_districts_show_the_apis_tonnage_and_a_district_without_sites(
    stack: Stack, tab: Tab
) -> None:
    tab.open(stack.dashboard.url + "/districts", "#district-table")
    today = datetime.now(ZONE).date()
    result = stack.api_get(
        "/v1/tonnage",
        **{
            "from": today.replace(day=1).isoformat(),
            "to": (today + timedelta(days=1)).isoformat(),
            "bucket": "total",
            "group_by": "district,category",
        },
    )
    assert result["rows"]
    for row in result["rows"]:
        district = row.get("district") or row.get("district_id")
        if row["category"] not in ("reduce", "utilize", "residual"):
            continue
        cells = tab.page.locator(f"#district-row-{district} td").all_inner_texts()
        column = {"reduce": 2, "utilize": 3, "residual": 4}[row["category"]]
        assert cells[column] == fmt.tonnes(row["tonnes"], "id"), (district, row["category"])
    empty_row = tab.text(f"#district-row-{stack.city.empty_district_id}")
    assert "Belum ada lokasi" in empty_row
    # The map is drawn tile-less (plain SVG, tests/test_dashboard_map.py): one marker per located
    # site, or an arrow at the frame's edge for a site far outside the city; nothing fetched.
    drawn = (
        "el.data.filter(t => (t.meta || '').startsWith('sites:'))"
        ".reduce((n, t) => n + t.x.length, 0) + (el.layout.annotations || []).length"
    )
    assert tab.plot("districts-map", drawn) == len(stack.city.sites)
    assert tab.plot("districts-map", "el.layout.map === undefined") is True
    tab.page.click("text=Isi kontainer")
    tab.page.wait_for_function(
        "() => document.querySelector('#districts-map .js-plotly-plot')?.data"
        ".some(t => t.meta === 'sites:fill' && t.marker.cmax === 100)"
    )
    assert tab.errors == []


def test_bins_page_lists_full_bins_by_fill_silent_devices_and_low_batteries(
    stack: Stack, tab: Tab
) -> None:
    tab.open(stack.dashboard.url + "/bins", "#bins-table")
    full = [b for b in stack.api_get("/v1/bins", needs_collection="true")]
    assert len(full) >= 2
    rows = tab.page.locator("#bins-table tbody tr")
    assert rows.count() == len(full)
    for i, item in enumerate(full):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[-1] == item["device_id"]
        assert cells[2] == fmt.percent(item["fill_pct"] / 100, "id", 0)
        assert fmt.number(item["lat"], "id", 5) in cells[5]
    silent = [d["device_id"] for d in stack.api_get("/v1/devices") if d["status"] != "online"]
    assert silent
    for device_id in silent:
        assert tab.page.locator(f"#silent-{device_id}").count() == 1
    low = [a["device_id"] for a in stack.api_get("/v1/alerts") if a["kind"] == "low_battery"]
    assert low and all(tab.page.locator(f"#battery-{d}").count() == 1 for d in low)

    # Filter to the second district: its bins are below the threshold.
    tab.page.click("#bins-district")
    tab.page.click("text=Kecamatan 02")
    tab.page.wait_for_selector("#bins-none", timeout=TIMEOUT_MS)
    assert (
        stack.api_get("/v1/bins", needs_collection="true", district=stack.city.district_ids[1])
        == []
    )
    # A district without sites says so rather than showing empty lists.
    tab.page.click("#bins-district")
    tab.page.click("text=Kecamatan Kosong")
    tab.page.wait_for_selector("#no-sites", timeout=TIMEOUT_MS)
    assert "belum memiliki lokasi" in tab.text("#no-sites")
    assert tab.errors == []


def test_report_table_equals_the_api_and_downloads_are_valid_files(stack: Stack, tab: Tab) -> None:
    month = datetime.now(ZONE).date().strftime("%Y-%m")
    tab.open(f"{stack.dashboard.url}/reports?month={month}&group=district", "#report-table")
    # The month is named in the page's language, never shown as its code.
    tab.page.wait_for_function(
        "want => document.querySelector('#report-month')?.innerText.includes(want)",
        arg=fmt.month(month, "id"),
        timeout=TIMEOUT_MS,
    )
    assert month not in tab.text("#report-month")
    first = datetime.now(ZONE).date().replace(day=1)
    end = (first + timedelta(days=32)).replace(day=1)
    api = stack.api_get(
        "/v1/tonnage",
        **{
            "from": first.isoformat(),
            "to": end.isoformat(),
            "bucket": "month",
            "group_by": "district",
        },
    )
    tab.page.wait_for_function(
        "t => document.querySelector('#report-table-total')?.innerText.includes(t)",
        arg=fmt.tonnes(api["total_tonnes"], "id", 3),
        timeout=TIMEOUT_MS,
    )
    for row in api["rows"]:
        district = row.get("district") or row.get("district_id")
        assert tab.text(f"#report-row-{district} td.num") == fmt.tonnes(row["tonnes"], "id", 3)

    with tab.page.expect_download(timeout=TIMEOUT_MS) as info:
        tab.page.click("#download-csv")
    text = Path(info.value.path()).read_bytes().decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert len(table) >= 3  # header, rows, totals
    names = {str(r.get("district_name")) for r in api["rows"]}
    assert names & {cell for line in table for cell in line}

    with tab.page.expect_download(timeout=TIMEOUT_MS) as info:
        tab.page.click("#download-xlsx")
    assert info.value.suggested_filename.endswith(".xlsx")
    workbook = openpyxl.load_workbook(
        io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True
    )
    assert len(workbook.sheetnames) >= 2
    assert workbook.sheetnames[0] == "kategori"  # Bahasa Indonesia first: the page's language
    assert tab.errors == []


def test_report_shows_the_months_coverage_and_national_terms(stack: Stack, tab: Tab) -> None:
    month = datetime.now(ZONE).date().strftime("%Y-%m")
    tab.open(f"{stack.dashboard.url}/reports?month={month}", "#report-coverage")
    national = stack.api_get("/v1/reports/national", month=month)
    assert national["status"] == "in_progress"
    status = tab.text("#report-coverage-status")
    assert status.startswith("Bulan berjalan")
    assert f"{national['days_with_data']} dari {national['days']} hari" in status
    assert tab.text("#report-national-A_t td.num") == fmt.tonnes(national["A_t"], "id", 3)
    assert tab.text("#report-national-B_share td.num") == fmt.percent(national["B_share"], "id", 2)
    assert "estimasi" in tab.text("#report-national-A_t")
    assert tab.errors == []


def test_annual_view_shows_months_as_columns_and_downloads_the_years_workbook(
    stack: Stack, tab: Tab
) -> None:
    year = datetime.now(ZONE).year
    tab.open(f"{stack.dashboard.url}/reports?period=year&year={year}", "#report-annual")
    api = stack.api_get("/v1/reports/national", year=str(year))
    statuses = tab.page.locator("#report-annual-status td").all_inner_texts()
    this_month = datetime.now(ZONE).month
    assert statuses[this_month].strip() == "Bulan berjalan"
    assert all(s.strip() == "Belum berjalan" for s in statuses[this_month + 1 : 13])
    cells = tab.page.locator("#report-annual-B_t td").all_inner_texts()
    assert cells[-1].strip() == fmt.tonnes(api["annual"]["B_t"], "id", 3)
    with tab.page.expect_download(timeout=TIMEOUT_MS) as info:
        tab.page.click("#download-xlsx")
    workbook = openpyxl.load_workbook(
        io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True
    )
    assert workbook.sheetnames[0] == "nasional_tahunan"
    assert tab.errors == []


def test_unreachable_api_shows_a_clear_message_on_every_page(stack: Stack, tab: Tab) -> None:
    for path in ("/", "/districts", "/bins", "/reports"):
        tab.open(stack.dead_api_dashboard.url + path, "#api-unreachable")
        assert re.search(r"tidak dapat dihubungi", tab.text("#api-unreachable"))
        assert "Traceback" not in tab.page.content()
    assert tab.errors == []


def test_city_without_readings_shows_no_data_yet(stack: Stack, tab: Tab) -> None:
    tab.open(stack.empty_dashboard.url + "/", "#no-data")
    assert "Belum ada data" in tab.text("#no-data")
    assert tab.text("#ov-day-collected") == fmt.tonnes(0, "id")
    tab.open(stack.empty_dashboard.url + "/reports", "#no-data")
    assert tab.errors == []


def test_viewer_sees_the_overview_but_no_export_and_a_direct_export_is_refused(
    stack: Stack, anonymous: Tab
) -> None:
    tab = anonymous
    log_in(tab, stack.dashboard.url, "vina")
    tab.open(stack.dashboard.url + "/", "#ov-day-reduce")
    assert tab.page.locator(".state-error").count() == 0
    tab.open(stack.dashboard.url + "/reports", "#report-table")
    assert tab.page.locator("#download-csv").is_hidden()
    assert tab.page.locator("#download-xlsx").is_hidden()
    # The API refuses the viewer's own session, whatever the page shows: the same token the
    # dashboard sends, taken from the dashboard's callback answer path, asked directly.
    month = datetime.now(ZONE).date().strftime("%Y-%m")
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM user_session WHERE username = 'vina' AND revoked_at IS NULL"
        ).fetchone()
    assert row is not None and row[0] >= 1
    direct = tab.page.request.get(f"{stack.api.url}/v1/exports/monthly.xlsx?month={month}")
    assert direct.status == 401  # the browser holds no API credential at all
    # A forged click on the hidden button: the callback runs with the viewer's session and
    # the API answers 403, shown as a message, no file.
    tab.page.evaluate("document.querySelector('#download-xlsx').hidden = false")
    tab.page.click("#download-xlsx")
    tab.page.wait_for_selector("#download-error", timeout=TIMEOUT_MS)
    assert tab.errors == []


def test_planner_downloads_the_monthly_xlsx(stack: Stack, tab: Tab) -> None:
    month = datetime.now(ZONE).date().strftime("%Y-%m")
    tab.open(f"{stack.dashboard.url}/reports?month={month}", "#report-table")
    assert tab.page.locator("#download-xlsx").is_visible()
    with tab.page.expect_download(timeout=TIMEOUT_MS) as info:
        tab.page.click("#download-xlsx")
    assert info.value.suggested_filename.endswith(".xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()))
    assert workbook.sheetnames


def test_wrong_password_shows_the_message_and_the_lockout_after_five(
    stack: Stack, anonymous: Tab
) -> None:
    tab = anonymous
    tab.page.goto(stack.dashboard.url + "/reports")
    assert tab.page.url.startswith(stack.dashboard.url + "/login")
    log_in(tab, stack.dashboard.url, "lola", "Wrong-Password-1")
    assert "Nama pengguna atau kata sandi salah" in tab.text("#login-error")
    for i in range(2, 6):
        log_in(tab, stack.dashboard.url, "lola", f"Wrong-Password-{i}")
    log_in(tab, stack.dashboard.url, "lola")  # the right password, too late
    assert "dikunci" in tab.text("#login-error")
    assert tab.page.locator("#ov-day-reduce").count() == 0


def test_logout_returns_to_login_and_back_shows_no_data(stack: Stack, anonymous: Tab) -> None:
    tab = anonymous
    log_in(tab, stack.dashboard.url, "budi")
    tab.open(stack.dashboard.url + "/", "#ov-day-reduce")
    tab.page.click("#logout")
    tab.page.wait_for_url(stack.dashboard.url + "/login", timeout=TIMEOUT_MS)
    tab.page.go_back()
    tab.page.wait_for_load_state()
    assert "/login" in tab.page.url
    assert tab.page.locator("#ov-day-reduce").count() == 0
    assert tab.page.locator("#username").count() == 1


def test_a_session_ended_while_a_page_is_open_returns_to_login(
    stack: Stack, anonymous: Tab
) -> None:
    tab = anonymous
    log_in(tab, stack.dashboard.url, "budi")
    tab.open(stack.dashboard.url + "/", "#ov-day-reduce")
    with psycopg.connect(stack.db_url) as conn:  # e.g. `pisman users disable` elsewhere
        conn.execute("UPDATE user_session SET revoked_at = now() WHERE username = 'budi'")
    # the next live refresh (every 2 s here) meets the API's 401
    tab.page.wait_for_url("**/login?expired=1**", timeout=TIMEOUT_MS)
    assert "Sesi Anda berakhir" in tab.text("#login-error")
    assert tab.page.locator("#ov-day-reduce").count() == 0


# --- overview: pace expected by now, yesterday, the residual ceiling, the trend's range ----------


def _indonesian_tonnes(text: str) -> float:
    """'1.234,5 t' -> 1234.5."""
    return float(text.removesuffix(" t").replace(".", "").replace(",", "."))


def _over_the_ceiling_today_and_yesterday(stack: Stack) -> None:
    """1,250 t more to the landfill yesterday at noon and today a moment ago (ceiling 981 t/day)."""
    from pisman import rollups

    landfill = next(s for s in stack.city.sites if s.site_type == "landfill")
    now = datetime.now(ZONE)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    moments = [midnight - timedelta(hours=12), max(midnight, now - timedelta(seconds=5))]
    rows = [
        (ts, stack.city.city_id, landfill.site_id, landfill.scale_id, 900_000 + 100 * d + i)
        for d, ts in enumerate(moments)
        for i in range(25)
    ]
    with psycopg.connect(stack.db_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO weighing (ts, city_id, site_id, device_id, seq, net_kg, material, stream)"
            " VALUES (%s, %s, %s, %s, %s, 50000, 'residual', 'to_landfill')",
            rows,
        )
        conn.execute(
            "SELECT pisman_refresh_weighing_rollups(%s, %s)",
            ([landfill.site_id] * 2, moments),
        )
        conn.commit()
        if rollups.uses_timescaledb(conn):
            rollups.refresh_late_rows(conn, min(moments), max(moments))


def test_overview_paces_today_shows_yesterday_and_says_when_the_residual_passes_its_ceiling(
    stack: Stack, tab: Tab
) -> None:
    _over_the_ceiling_today_and_yesterday(stack)
    tab.open(stack.dashboard.url + "/", "#ov-pace-residual-over")
    progress = stack.api_get("/v1/progress", trend_days=1)
    pace, yesterday = progress["pace"], progress["yesterday"]
    assert pace["residual"]["over_ceiling"] is True and yesterday["residual_over_ceiling"] is True

    # Today so far against what is expected by now (the expectation moves with the clock).
    collected = re.fullmatch(
        r"(.+ t) dari (.+ t) yang diharapkan sampai saat ini\s*(di depan laju|di belakang laju)",
        tab.text("#ov-pace-collected"),
    )
    assert collected, tab.text("#ov-pace-collected")
    assert collected.group(1) == fmt.tonnes(pace["collected"]["so_far_t"], "id")
    assert _indonesian_tonnes(collected.group(2)) == pytest.approx(
        pace["collected"]["expected_t"], abs=2.0
    )
    assert "4 minggu terakhir" in tab.text("#ov-pace-basis")
    # The residual is a ceiling: over it, the card is red and says so in words.
    assert "card-over" in (tab.page.get_attribute("#card-residual", "class") or "")
    assert tab.text("#card-residual .card-sub").startswith("Batas harian:")
    over = tab.text("#ov-pace-residual-over")
    assert over == "Melebihi batas harian: +" + fmt.tonnes(
        pace["residual"]["so_far_t"] - pace["residual"]["day_target_t"], "id"
    )
    # Yesterday's whole day, its residual over the day's ceiling in words.
    assert tab.text("#ov-yday-collected") == fmt.tonnes(yesterday["collected_t"], "id")
    residual = yesterday["categories"]["residual"]["tonnes"]
    assert tab.text("#ov-yday-residual") == fmt.tonnes(residual, "id")
    assert tab.text("#ov-yday-residual-target") == fmt.tonnes(yesterday["residual_ceiling_t"], "id")
    assert tab.text("#ov-yday-residual-over") == "Melebihi batas: +" + fmt.tonnes(
        residual - yesterday["residual_ceiling_t"], "id"
    )
    # The generation target (the city's, 1,500 t/day) is a labelled line on the trend.
    assert tab.plot("ov-trend", "el.layout.shapes.map(s => s.y0)") == [1500]
    assert tab.plot("ov-trend", "el.layout.annotations.map(a => a.text)") == [
        "Timbulan 1.500 t/hari"
    ]

    tab.page.click("#lang-toggle")
    tab.page.wait_for_function(
        "() => document.querySelector('#ov-pace-residual-over')?.innerText.startsWith('Over the daily ceiling:')",
        timeout=TIMEOUT_MS,
    )
    assert re.fullmatch(
        r".+ t of .+ t expected by now\s*(ahead of pace|behind pace)",
        tab.text("#ov-pace-collected"),
    )
    assert tab.text("#ov-yday-residual-over").startswith("Over the ceiling: +")
    tab.page.wait_for_function(
        "() => document.querySelector('#ov-trend .js-plotly-plot')?.layout.annotations"
        ".map(a => a.text).join() === 'Generated 1,500 t/day'",
        timeout=TIMEOUT_MS,
    )
    assert tab.errors == []


def test_overview_trend_follows_the_picked_range_and_refuses_an_absurd_one(
    stack: Stack, tab: Tab
) -> None:
    tab.open(stack.dashboard.url + "/", "#ov-trend .js-plotly-plot")
    assert tab.plot("ov-trend", "el.data.map(t => t.x.length)") == [90, 90, 90, 90]
    today = datetime.now(ZONE).date()
    first = today - timedelta(days=19)
    # Typed the way the picker shows dates ('1 Nov 2026').
    for selector, day in (("#ov-trend-start", first), ("#ov-trend-end", today)):
        tab.page.fill(selector, f"{day.day} {day.strftime('%b %Y')}")
        tab.page.keyboard.press("Enter")
    tab.page.wait_for_function(
        "() => { const el = document.querySelector('#ov-trend .js-plotly-plot');"
        " return el && el.data && el.data[0].x.length === 20; }",
        timeout=TIMEOUT_MS,
    )
    assert tab.text("#ov-trend-title") == (
        f"Tren harian {fmt.day(first, 'id')} – {fmt.day(today, 'id')}"
    )
    tonnage = stack.api_get(
        "/v1/tonnage",
        **{
            "from": first.isoformat(),
            "to": (today + timedelta(days=1)).isoformat(),
            "bucket": "day",
            "group_by": "category",
        },
    )
    residual_by_day = {
        r["bucket_start"][:10]: r["tonnes"] for r in tonnage["rows"] if r["category"] == "residual"
    }
    drawn = tab.plot(
        "ov-trend", "Object.fromEntries(el.data[2].x.map((x, i) => [x, el.data[2].y[i]]))"
    )
    assert {d: y for d, y in drawn.items() if y} == residual_by_day

    # Longer than 400 days, or the last day first: said in words, no chart, no error.
    for start, end, words in (
        ((today - timedelta(days=500)).isoformat(), today.isoformat(), "paling lama 400 hari"),
        (today.isoformat(), (today - timedelta(days=3)).isoformat(), "Tanggal awal harus"),
    ):
        tab.page.evaluate(
            "([s, e]) => window.dash_clientside.set_props('ov-trend-range',"
            " {start_date: s, end_date: e})",
            [start, end],
        )
        tab.page.wait_for_function(
            "w => document.querySelector('#ov-trend-error')?.innerText.includes(w)",
            arg=words,
            timeout=TIMEOUT_MS,
        )
        assert tab.page.locator("#ov-trend").count() == 0
        assert tab.page.locator("#ov-day-collected").count() == 1  # the rest of the page stays
    assert tab.errors == []
