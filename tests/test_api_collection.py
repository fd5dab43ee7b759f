"""The bin forecast and collection-plan API against a real database (both backends)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from api.app import create_app
from api.routes import collection
from pisman import citydata, keys, rollups, users
from pisman.devices import add_device
from pisman.settings import PROJECT_ROOT

TZ = ZoneInfo("Asia/Jakarta")
CITY_FILE = PROJECT_ROOT / "data" / "cities" / "testville.yaml"
# Per hour; north fills fast (emptied at 85 %), south slowly and never reaches the threshold soon.
RATES = {"tv-tps-north-bin1": 0.025, "tv-tps-south-bin1": 0.004}


def _history(conn: psycopg.Connection, now: datetime, days: int = 10) -> None:
    """15-minute readings of two depot bins with known fill curves, and their rollups."""
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    rows = []
    for device_id, rate in RATES.items():
        site = device_id.removesuffix("-bin1")
        level = 0.1
        t = start
        seq = 1
        while t < now - timedelta(minutes=20):
            level += rate / 4
            if level >= 0.85:
                level = 0.03
            rows.append((t, "testville", site, device_id, seq, round(level, 4)))
            t += timedelta(minutes=15)
            seq += 1
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bin_reading (ts, city_id, site_id, device_id, seq, fill_ratio)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )
    hours = sorted({(r[3], r[0].replace(minute=0)) for r in rows})
    conn.execute(
        "SELECT pisman_refresh_bin_rollups(%s, %s)", ([h[0] for h in hours], [h[1] for h in hours])
    )
    conn.commit()
    if rollups.uses_timescaledb(conn):
        rollups.refresh_late_rows(conn, rows[0][0], rows[-1][0])


def seed_database(url: str) -> None:
    """Testville with its fleet and two depot bins with 10 days of history, once per module and
    backend (each test gets its own copy: seeded_db_url)."""
    with psycopg.connect(url) as conn:
        citydata.load_city(conn, citydata.read_city_file(CITY_FILE))
        for device_id in RATES:
            add_device(
                conn,
                device_id=device_id,
                site_id=device_id.removesuffix("-bin1"),
                kind="bin_sensor",
            )
        add_device(conn, device_id="tv-tps-north-wb1", site_id="tv-tps-north", kind="weighbridge")
        conn.commit()
        _history(conn, datetime.now(UTC))


@pytest.fixture
def world(
    seeded_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, dict[str, str]]]:
    """Testville with its fleet, two depot bins with 10 days of history, a key per role."""
    from fastapi.testclient import TestClient

    monkeypatch.setenv("DATABASE_URL", seeded_db_url)
    monkeypatch.setenv("PISMAN_CITY", "testville")
    monkeypatch.setenv("MQTT_URL", "mqtt://127.0.0.1:1")
    monkeypatch.setenv("PISMAN_PLAN_TIME_LIMIT_S", "2")
    collection._cache.clear()
    from pisman.settings import get_settings

    get_settings.cache_clear()
    with psycopg.connect(seeded_db_url) as conn:
        role_keys = {
            role: keys.create_key(conn, role=role, name=f"test-{role}")
            for role in ("viewer", "planner", "admin")
        }
    with TestClient(create_app()) as client:
        yield client, role_keys
    collection._cache.clear()


def _get(world: tuple[Any, dict[str, str]], role: str, url: str) -> Any:
    client, role_keys = world
    return client.get(url, headers={"X-API-Key": role_keys[role]})


def _boundaries(world: tuple[Any, dict[str, str]]) -> Any:
    from pisman.contract import DistrictBoundariesAnswer

    r = _get(world, "viewer", "/v1/districts/boundaries")
    assert r.status_code == 200, r.text
    return DistrictBoundariesAnswer.model_validate(r.json())


def test_forecast_of_a_filling_bin_gives_its_rate_and_time_to_threshold(world: Any) -> None:
    r = _get(world, "viewer", "/v1/bins/tv-tps-north-bin1/forecast")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["rate_pct_per_day"] == pytest.approx(2.5 * 24, rel=0.1)
    assert len(body["rate_pct_by_hour_of_week"]) == 168
    to = body["to_threshold"]
    remaining = (80 - body["current_fill_pct"]) / 2.5
    if remaining > 0:
        assert to["expected_h"] == pytest.approx(remaining, abs=1.5)
        assert to["earliest_h"] <= to["expected_h"] <= to["latest_h"]


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/v1/bins/no-such-bin/forecast", 404, "no device"),
        ("/v1/bins/tv-tps-north-wb1/forecast", 422, "not a bin sensor"),
        ("/v1/bins/BAD%20ID/forecast", 422, ""),
    ],
)
def test_forecast_refuses_what_it_cannot_answer(
    world: Any, url: str, status: int, words: str
) -> None:
    r = _get(world, "viewer", url)
    assert r.status_code == status
    assert words in r.text


def test_forecast_of_a_bin_without_history_says_so(world: Any, seeded_db_url: str) -> None:
    with psycopg.connect(seeded_db_url) as conn:
        add_device(conn, device_id="tv-new-bin", site_id="tv-tps-south", kind="bin_sensor")
        conn.commit()
    r = _get(world, "viewer", "/v1/bins/tv-new-bin/forecast")
    assert r.status_code == 200
    assert r.json()["status"] == "insufficient_history"
    assert "no readings" in r.json()["message"]


def test_every_bins_forecast_in_one_answer_soonest_first_as_the_single_answers_say(
    world: Any, seeded_db_url: str
) -> None:
    with psycopg.connect(seeded_db_url) as conn:
        add_device(conn, device_id="tv-new-bin", site_id="tv-tps-south", kind="bin_sensor")
        conn.commit()
    r = _get(world, "viewer", "/v1/bins/forecast")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["city"] == "testville" and body["district"] is None
    assert body["lookback_days"] == 28
    # North fills 2.5 %/h, south 0.4 %/h, the new bin has no history: in that order.
    assert [b["device_id"] for b in body["bins"]] == [*RATES, "tv-new-bin"]
    new = body["bins"][-1]
    assert new["status"] == "insufficient_history" and "no readings" in new["message"]
    assert new["reason"] == "no_readings"
    assert new["to_threshold"] is None and new["rate_pct_per_day"] is None
    for item in body["bins"][:2]:
        single = _get(world, "viewer", f"/v1/bins/{item['device_id']}/forecast").json()
        assert item["district_name"] == single["district_name"]
        assert item["rate_pct_per_day"] == pytest.approx(single["rate_pct_per_day"], rel=0.01)
        assert item["to_threshold"]["expected_h"] == pytest.approx(
            single["to_threshold"]["expected_h"], abs=0.2
        )
        assert "rate_pct_by_hour_of_week" not in item  # the batch leaves the profile out
    assert body["bins"][0]["rate_pct_per_day"] == pytest.approx(2.5 * 24, rel=0.1)
    south = _get(world, "viewer", "/v1/bins/forecast?district=south").json()
    assert south["district"] == "south"
    assert [b["device_id"] for b in south["bins"]] == ["tv-tps-south-bin1", "tv-new-bin"]


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("district=nowhere", 404, "no district 'nowhere'"),
        ("district=BAD%20ID", 422, "district"),
        ("district=" + "x" * 80, 422, "district"),
        ("city=no-such-city", 404, ""),
    ],
)
def test_every_bins_forecast_refuses_bad_parameters_with_4xx(
    world: Any, query: str, status: int, words: str
) -> None:
    r = _get(world, "viewer", f"/v1/bins/forecast?{query}")
    assert r.status_code == status, r.text
    assert words in r.text and "detail" in r.json()


def test_every_bins_forecast_needs_a_key(world: Any) -> None:
    client, _ = world
    assert client.get("/v1/bins/forecast").status_code == 401
    assert client.get("/v1/bins/forecast", headers={"X-API-Key": "nope"}).status_code == 401


def test_plan_for_tomorrow_collects_the_filling_depot_within_capacity_and_hours(world: Any) -> None:
    r = _get(world, "planner", "/v1/collection-plan")
    assert r.status_code == 200, r.text
    plan = r.json()
    tomorrow = (datetime.now(TZ) + timedelta(days=1)).date().isoformat()
    assert plan["date"] == tomorrow and plan["status"] == "ok", plan
    stops = [s for t in plan["trucks"] for trip in t["trips"] for s in trip["stops"]]
    # North fills 60 %/day: it must be emptied; south (10 %/day, emptied only at 85 %) need not.
    assert "tv-tps-north" in {s["site_id"] for s in stops}
    for truck in plan["trucks"]:
        for trip in truck["trips"]:
            assert trip["load_t"] <= truck["capacity_t"]
            assert "06:00" <= trip["landfill_arrival"] <= "20:00"
            for s in trip["stops"]:
                assert s["window_start"] <= s["arrival"] <= s["window_end"]
                assert s["kelurahan"] is None or isinstance(s["kelurahan"], str)
    assert plan["summary"]["km"] > 0 and plan["uncovered"] == []


def test_plan_exports_as_xlsx_and_a_printable_page_per_truck(world: Any) -> None:
    plan = _get(world, "planner", "/v1/collection-plan").json()
    x = _get(world, "planner", "/v1/collection-plan.xlsx")
    assert x.status_code == 200
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    with zipfile.ZipFile(io.BytesIO(x.content)) as z:
        shared = z.read("xl/sharedStrings.xml").decode()
        sheets = z.read("xl/workbook.xml").decode()
    assert "TPS North" in shared and "Jendela waktu" in shared
    assert "Rencana" in sheets and "Tidak terangkut" in sheets
    truck = plan["trucks"][0]["truck_id"]
    page = _get(world, "planner", f"/v1/collection-plan/print?truck={truck}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (
        f"Truk {truck}" in page.text and "TPS North" in page.text and "Jendela waktu" in page.text
    )
    assert "style-src 'sha256-" in page.headers["content-security-policy"]
    assert _get(world, "planner", "/v1/collection-plan/print?truck=nope").status_code == 404


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("date=2026-13-01", 422, "YYYY-MM-DD"),
        ("date=tomorrow", 422, "YYYY-MM-DD"),
        ("date=0001-01-01", 422, "between the years"),
        ("date=2199-01-01", 422, "days ahead"),
        ("pool=no-such-pool", 404, "no truck pool"),
        ("pool=BAD POOL", 422, ""),
    ],
)
def test_plan_answers_bad_input_with_4xx(world: Any, query: str, status: int, words: str) -> None:
    for path in ("/v1/collection-plan", "/v1/collection-plan.xlsx", "/v1/collection-plan/print"):
        r = _get(world, "planner", f"{path}?{query}")
        assert r.status_code == status, (path, r.text)
        assert words in r.text


def test_viewer_may_not_read_the_plan(world: Any) -> None:
    for path in ("/v1/collection-plan", "/v1/collection-plan.xlsx", "/v1/collection-plan/print"):
        assert _get(world, "viewer", path).status_code == 403
    assert _get(world, "admin", "/v1/collection-plan").status_code == 200


def test_a_date_without_data_gives_a_plan_that_says_so(world: Any) -> None:
    r = _get(world, "planner", "/v1/collection-plan?date=2020-01-01")
    assert r.status_code == 200
    plan = r.json()
    assert plan["trucks"] == []
    assert {u["reason_code"] for u in plan["uncovered"]} == {"no_data"}
    assert any("no fill data" in m for m in plan["messages"])


def test_a_city_without_fleet_data_gets_a_plan_that_says_so(world: Any, seeded_db_url: str) -> None:
    with psycopg.connect(seeded_db_url) as conn:
        conn.execute("DELETE FROM truck_pool; DELETE FROM collection_params")
    r = _get(world, "planner", "/v1/collection-plan")
    assert r.status_code == 200
    plan = r.json()
    assert plan["status"] == "no_fleet" and plan["trucks"] == []
    assert "tv-tps-north" in {
        u["site_id"] for u in plan["uncovered"] if u["reason_code"] == "no_trucks"
    }
    assert any("no fleet data" in m for m in plan["messages"])


def test_dashboard_page_draws_the_apis_plan_on_the_map_and_per_truck(world: Any) -> None:
    import importlib

    import dash

    from dashboard.app import create_app as create_dashboard
    from pisman.contract import PlanAnswer, PlanUncovered

    create_dashboard()  # Dash pages register only once an app exists
    # The module Dash loaded for /collection (as "pages.collection"): importing it again as
    # dashboard.pages.collection would register the page twice, which every later dashboard
    # in this process refuses with a 500 ("duplicate paths").
    name = next(p["module"] for p in dash.page_registry.values() if p["path"] == "/collection")
    page = importlib.import_module(name)

    plan = PlanAnswer.model_validate(_get(world, "planner", "/v1/collection-plan").json())
    fig = page.route_map(plan, "id")
    routes = [tr for tr in fig.data if tr.name in {t.truck_id for t in plan.trucks}]
    assert len(routes) == len(plan.trucks) >= 1
    north = next(
        s
        for t in plan.trucks
        for trip in t.trips
        for s in trip.stops
        if s.site_id == "tv-tps-north"
    )
    assert (north.lon, north.lat) in {p for r in routes for p in zip(r.x, r.y, strict=True)}
    # Plain SVG on longitude/latitude axes like the districts' map: no tiles, no WebGL, and only
    # trace types Plotly's basic bundle draws (dashboard/plotly_bundle.py).
    assert {tr.type for tr in fig.data} <= {"scatter"}
    with_outlines = page.route_map(plan, "id", _boundaries(world))
    shapes = [tr for tr in with_outlines.data if (tr.meta or "").startswith("district:")]
    assert shapes and all(tr.fill == "toself" for tr in shapes)
    lf = plan.landfill
    assert lf is not None
    # The landfill gate lies outside the city: an arrow at the frame's edge names it.
    assert [a.name for a in with_outlines.layout.annotations] == [f"off-frame:{lf.id}"]
    text = str(page._truck_table(plan, "id"))
    assert "TPS North" in text and "Jendela waktu" in text
    # A depot left out: its district by name and the reason in the page's language only.
    gap = PlanUncovered(
        site_id="tv-tps-x",
        site_name="TPS X",
        district_id="tv-d1",
        kelurahan=None,
        pool_id=None,
        expected_fill_pct=93.0,
        reason_code="no_capacity",
        reason="(the API's bilingual text)",
    )
    with_gap = plan.model_copy(update={"uncovered": [gap]})
    text_id = str(page._uncovered_table(with_gap, {"tv-d1": "Kecamatan Satu"}, "id"))
    assert "Kecamatan Satu" in text_id and "Perkiraan isi" in text_id
    assert "muatan melebihi kapasitas truk dan shift" in text_id and "more waste" not in text_id
    text_en = str(page._uncovered_table(with_gap, {"tv-d1": "Kecamatan Satu"}, "en"))
    assert "more waste than the trucks can carry" in text_en and "muatan" not in text_en


def test_collection_and_bins_pages_in_a_browser_for_a_planner_and_a_viewer(
    db_url: str, tmp_path: Any, browser: Any
) -> None:
    """The real API and dashboard as processes, the pages in headless Chromium: the planner sees
    the plan and downloads its XLSX and printable page through the session; the bins page shows
    every bin's forecast; a viewer gets neither the plan nor its files."""
    from bench.dashboard.servers import api_args, dashboard_args, serve
    from tests.support.broker import free_port

    with psycopg.connect(db_url) as conn:
        citydata.load_city(conn, citydata.read_city_file(CITY_FILE))
        for device_id in RATES:
            add_device(
                conn,
                device_id=device_id,
                site_id=device_id.removesuffix("-bin1"),
                kind="bin_sensor",
            )
        add_device(conn, device_id="tv-new-bin", site_id="tv-tps-south", kind="bin_sensor")
        conn.commit()
        _history(conn, datetime.now(UTC))
        users.add_user(conn, username="planner", password="Sampah-Bandung-2026", role="planner")
        users.add_user(conn, username="vina", password="Sampah-Bandung-2026", role="viewer")
    api_port, dash_port = free_port(), free_port()
    api_url, dash_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
    env = {
        "DATABASE_URL": db_url,
        "API_URL": api_url,
        "PISMAN_CITY": "testville",
        "PISMAN_DATA_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",
    }
    with (
        serve(api_args(api_port), env=env, ready_url=f"{api_url}/healthz", base_url=api_url, log=tmp_path / "api.log"),
        serve(
            dashboard_args(dash_port), env=env, ready_url=f"{dash_url}/_dash-layout", base_url=dash_url,
            log=tmp_path / "dash.log",
        ),
        browser.new_context() as planner,
        browser.new_context() as viewer_context,
    ):  # fmt: skip
        page = planner.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _log_in(page, dash_url, "planner", "/collection")
        page.wait_for_selector("#plan-stops, .state-error, .state-empty", timeout=60_000)
        assert page.locator("#plan-stops").count() == 1, page.inner_text("#plan-body")
        page.wait_for_selector("#plan-map .js-plotly-plot", timeout=30_000)
        text = page.inner_text("#plan-body")
        assert "TPS North" in text and "Jendela waktu" in text and "Urutan per truk" in text
        assert page.locator("#plan-stops tbody tr").count() >= 1
        assert page.locator(".state-error").count() == 0

        # The plan's files through the planner's own session (the browser holds no API key).
        with page.expect_download(timeout=60_000) as info:
            page.click("#plan-download-xlsx")
        assert info.value.suggested_filename.endswith(".xlsx")
        with zipfile.ZipFile(Path(info.value.path())) as z:
            assert "TPS North" in z.read("xl/sharedStrings.xml").decode()
        with page.expect_download(timeout=60_000) as info:
            page.click("#plan-download-print")
        assert info.value.suggested_filename.endswith(".html")
        printed = Path(info.value.path()).read_text()
        assert "Truk tv-" in printed and "TPS North" in printed and "Paraf" in printed

        # The bins page: every bin's forecast, soonest first, from one API call.
        calls: list[str] = []
        page.on("request", lambda r: calls.append(r.url))
        page.goto(f"{dash_url}/bins")
        page.wait_for_selector("#forecast-table", timeout=60_000)
        north = page.inner_text("#forecast-tv-tps-north-bin1")
        assert "jam" in north or "sudah di ambang" in north, north
        rows = page.locator("#forecast-table tbody tr")
        assert rows.count() == 3 and rows.nth(0).get_attribute("id") == (
            "forecast-tv-tps-north-bin1"
        )
        assert "riwayat kurang" in page.inner_text("#forecast-tv-new-bin")
        assert errors == []

        # A viewer: no plan, no download buttons, and a forged click gets a message, no file.
        viewer = viewer_context.new_page()
        viewer.on("pageerror", lambda e: errors.append(str(e)))
        _log_in(viewer, dash_url, "vina", "/collection")
        viewer.wait_for_selector("#api-error", timeout=60_000)
        assert "planner" in viewer.inner_text("#api-error")
        assert viewer.locator("#plan-download-xlsx").is_hidden()
        assert viewer.locator("#plan-download-print").is_hidden()
        viewer.evaluate("document.querySelector('#plan-download-xlsx').hidden = false")
        downloads: list[Any] = []
        viewer.on("download", lambda d: downloads.append(d))
        viewer.click("#plan-download-xlsx")
        viewer.wait_for_selector("#download-error", timeout=60_000)
        assert downloads == [] and errors == []
        # The viewer does see the forecasts.
        viewer.goto(f"{dash_url}/bins")
        viewer.wait_for_selector("#forecast-table", timeout=60_000)


def _log_in(page: Any, dash_url: str, username: str, then: str) -> None:
    page.goto(f"{dash_url}/login?next={then}")
    page.fill("#username", username)
    page.fill("#password", "Sampah-Bandung-2026")
    page.click("#login-submit")
    page.wait_for_url(f"{dash_url}{then}", timeout=30_000)


def test_a_plan_for_today_serves_nothing_in_the_past(world: Any) -> None:
    now = datetime.now(TZ)
    r = _get(world, "planner", f"/v1/collection-plan?date={now.date().isoformat()}")
    assert r.status_code == 200, r.text
    plan = r.json()
    earliest = f"{now.hour:02d}:{now.minute:02d}"
    for truck in plan["trucks"]:
        assert truck["start"] >= earliest
        assert all(s["arrival"] >= earliest for trip in truck["trips"] for s in trip["stops"])
    # Past today's shifts, the full depots are reported, never silently dropped.
    stops = {s["site_id"] for t in plan["trucks"] for trip in t["trips"] for s in trip["stops"]}
    reported = {u["site_id"] for u in plan["uncovered"]} | {u["site_id"] for u in plan["deferred"]}
    assert "tv-tps-north" in stops | reported
    if now.hour >= 14:  # testville's shifts end at 14:00
        assert plan["trucks"] == [] and any("shifts have ended" in m for m in plan["messages"])


def _bins_page() -> Any:
    """The module Dash loaded for /bins (importing it again would register the page twice)."""
    import importlib

    import dash

    from dashboard.app import create_app as create_dashboard

    create_dashboard()
    name = next(p["module"] for p in dash.page_registry.values() if p["path"] == "/bins")
    return importlib.import_module(name)


def _item(status: str = "ok", reason: str | None = None, **to: float | None) -> Any:
    from pisman.contract import BinForecastItem, TimeToThreshold

    ok = status == "ok"
    when = "2026-12-07T03:00+07:00"
    return BinForecastItem(
        device_id="b1",
        site_id="s1",
        site_name="TPS Satu",
        district_id="d1",
        district_name="Satu",
        status=status,  # type: ignore[arg-type]
        reason=reason,  # type: ignore[arg-type]
        message="pesan / message",
        threshold_pct=80.0,
        current_fill_pct=50.0 if ok else None,
        rate_pct_per_day=30.0 if ok else None,
        to_threshold=TimeToThreshold(
            expected_h=to.get("expected"),
            earliest_h=to.get("earliest"),
            latest_h=to.get("latest"),
            expected_at=when,
            earliest_at=when,
            latest_at=when,
        )
        if ok
        else None,
        to_full=None,
        history_hours=5,
        emptyings=0,
    )


@pytest.mark.parametrize(
    ("item", "lang", "text"),
    [
        (_item(expected=6.2, earliest=4.4, latest=9.0), "id", "± 6 jam (4–9)"),
        (_item(expected=6.2, earliest=4.4, latest=9.0), "en", "in ~6 h (4–9)"),
        (_item(expected=80.0, earliest=60.0, latest=None), "id", "± 3 hari (3–14+)"),
        (_item(expected=0.0, earliest=0.0, latest=0.0), "id", "sudah di ambang"),
        (_item(expected=0.4, earliest=0.2, latest=0.9), "en", "within the hour"),
        (_item(expected=None, earliest=200.0, latest=None), "en", "more than 14 days"),
        (_item("insufficient_history", "no_readings"), "id", "riwayat kurang: tidak ada"),
        (_item("insufficient_history", "too_few_hours"), "en", "not enough history: only 5 h"),
        (_item("insufficient_history", "stale"), "en", "not enough history: the newest"),
    ],
)
def test_the_bins_page_words_each_forecast_in_the_chosen_language(
    item: Any, lang: str, text: str
) -> None:
    assert _bins_page().until_threshold(item, lang).startswith(text)
