"""The districts map in headless Chromium against the real API: Testville's outlines drawn as a
choropleth (one shape per district), framed on the city with the landfill gate as an off-frame
arrow, sites without a fill sensor drawn apart from a bin at 0 %, no console (CSP) errors, no
sideways scrolling at 390 px; a city without outlines still gets its sites and a note."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench.dashboard.seed import INSERT_DEVICE
from bench.dashboard.servers import Server, api_args, dashboard_args, serve
from pisman import citydata, users
from pisman.settings import PROJECT_ROOT
from tests.support import api_seed
from tests.support.broker import free_port

pytestmark = pytest.mark.browser

PASSWORD = "Peta-Kecamatan-2026"
TIMEOUT_MS = 15_000
TESTVILLE = PROJECT_ROOT / "data" / "cities" / "testville.yaml"
# Bins: one at 0 % (it reports: empty), one at 90 %, one that never reported.
BIN_FILLS = {"tv-tps-north": 0.0, "tv-tps-south": 0.9, "tv-tps3r-compost": None}
OUTLINES = {"north": (107.57, -6.925, 107.65, -6.865), "south": (107.57, -6.98, 107.655, -6.925)}


def _seed(conn: psycopg.Connection) -> None:
    citydata.load_city(conn, citydata.read_city_file(TESTVILLE))
    api_seed.seed_city(conn, bins=0)  # Apitown: no outlines
    now = datetime.now(UTC) - timedelta(minutes=2)
    for site_id, fill in BIN_FILLS.items():
        device_id = f"{site_id}-bin1"
        conn.execute(INSERT_DEVICE, (device_id, "testville", site_id, "bin_sensor", 300))
        if fill is not None:
            conn.execute(
                "INSERT INTO bin_reading (ts, city_id, site_id, device_id, seq, fill_ratio)"
                " VALUES (%s, 'testville', %s, %s, 1, %s)",
                (now, site_id, device_id, fill),
            )
    users.add_user(conn, username="okta", password=PASSWORD, role="viewer")


@pytest.fixture(scope="module")
def servers(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    """The API and two dashboards: Testville (outlines) and Apitown (none)."""
    with psycopg.connect(module_db_url) as conn:
        _seed(conn)
    logs = tmp_path_factory.mktemp("map-logs")
    api_port, dash_port, bare_port = free_port(), free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    env = {
        "DATABASE_URL": module_db_url,
        "API_URL": api_url,
        "LOG_LEVEL": "WARNING",
        "PISMAN_DATA_DIR": str(tmp_path_factory.mktemp("map-data")),
        "PISMAN_CITY": "testville",
    }

    def dashboard(port: int, city: str, log: Path) -> Any:
        url = f"http://127.0.0.1:{port}"
        return serve(
            dashboard_args(port),
            env={**env, "PISMAN_CITY": city, "DASHBOARD_REFRESH_S": "60"},
            ready_url=f"{url}/login",
            base_url=url,
            log=log,
        )

    with (
        serve(
            api_args(api_port),
            env=env,
            ready_url=f"{api_url}/healthz",
            base_url=api_url,
            log=logs / "api.log",
        ),
        dashboard(dash_port, "testville", logs / "testville.log") as dash,
        dashboard(bare_port, api_seed.CITY, logs / "apitown.log") as bare,
    ):
        yield dash, bare


class Tab:
    """A logged-in page in a fresh context, collecting console errors (CSP violations among them)."""

    def __init__(self, browser: Any, url: str, width: int = 1400) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 1000})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url + "/login")
        self.page.fill("#username", "okta")
        self.page.fill("#password", PASSWORD)
        self.page.click("#login-submit")
        self.page.wait_for_url(url + "/", timeout=TIMEOUT_MS)
        self.page.goto(url + "/districts")
        self.page.wait_for_selector("#districts-map .js-plotly-plot", timeout=TIMEOUT_MS)

    def figure(self, condition: str = "true") -> Any:
        """The drawn figure's traces (meta, symbol, point count), axis ranges and annotations,
        once `condition` (on `data`) holds."""
        script = (
            "() => { const el = document.querySelector('#districts-map .js-plotly-plot');"
            " if (!el || !el.data || !el._fullLayout) return null; const data = el.data;"
            " if (!(" + condition + ")) return null;"
            " return {traces: data.map(t => ({meta: t.meta || null,"
            "   symbol: t.marker ? t.marker.symbol || null : null, n: (t.x || []).length,"
            "   fill: t.fill || null, colour: t.fillcolor || null})),"
            " x: el._fullLayout.xaxis.range, y: el._fullLayout.yaxis.range,"
            " notes: (el.layout.annotations || []).map(a => a.text),"
            " fills: el.querySelectorAll('.scatterlayer .js-fill').length}; }"
        )
        return self.page.wait_for_function(script, timeout=TIMEOUT_MS).json_value()


def _by_meta(figure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["meta"]: t for t in figure["traces"] if t["meta"]}


def test_choropleth_draws_one_shape_per_district_framed_on_the_city(
    servers: tuple[Server, Server], browser: Any
) -> None:
    tab = Tab(browser, servers[0].url)
    figure = tab.figure()
    traces = _by_meta(figure)
    districts = sorted(m for m in traces if m.startswith("district:"))
    assert districts == ["district:north", "district:south"]
    assert figure["fills"] == 2  # two filled shapes in the SVG, nothing else filled
    assert all(traces[d]["fill"] == "toself" for d in districts)
    # Framed on the outlines: both fit, the landfill gate 12 km west (107.50) does not.
    (x0, x1), (y0, y1) = figure["x"], figure["y"]
    for min_lon, min_lat, max_lon, max_lat in OUTLINES.values():
        assert x0 <= min_lon and max_lon <= x1 and y0 <= min_lat and max_lat <= y1
    assert x0 > 107.55 and x1 - x0 < 0.2
    assert any("TPA Testville gate" in n and "km dari tengah peta" in n for n in figure["notes"])
    assert "Batas wilayah: synthetic test geometry" in tab.page.inner_text("#districts-body")
    assert tab.errors == []
    tab.context.close()


def test_sites_without_a_fill_sensor_are_drawn_apart_from_an_empty_bin(
    servers: tuple[Server, Server], browser: Any
) -> None:
    tab = Tab(browser, servers[0].url)
    tab.page.click("#districts-colour input[value=fill]")
    figure = tab.figure("data.some(t => t.meta === 'sites:no-sensor')")
    traces = _by_meta(figure)
    read, silent, blind = (
        traces["sites:fill"],
        traces["sites:sensor-silent"],
        traces["sites:no-sensor"],
    )
    assert read["n"] == 2 and read["symbol"] == "circle"  # 0 % and 90 %: both are readings
    assert silent["n"] == 1 and silent["symbol"] == "circle-open"
    # 8 sites: 3 with a sensor, the landfill gate off the frame, 4 that cannot tell their fill.
    assert blind["n"] == 4 and blind["symbol"] == "diamond-open"
    legend = tab.page.evaluate("() => document.querySelector('#districts-map .legend').textContent")
    assert "Lokasi tanpa sensor isi" in legend and "Sensor, belum ada data" in legend
    # Shading by bins needing collection: the south (90 % bin) is the darker district.
    tab.page.click("#districts-shade input[value=bins]")
    redrawn = "data.some(t => t.meta === 'district-scale' && t.marker.colorbar.title.text === 'kontainer')"
    shaded = _by_meta(tab.figure(redrawn))
    assert shaded["district:north"]["colour"] != shaded["district:south"]["colour"]
    assert tab.errors == []
    tab.context.close()


def test_map_fits_a_phone_without_sideways_scrolling(
    servers: tuple[Server, Server], browser: Any
) -> None:
    tab = Tab(browser, servers[0].url, width=390)
    tab.figure()
    width = tab.page.evaluate(
        "() => document.querySelector('#districts-map').getBoundingClientRect().right"
    )
    assert width <= 390
    assert tab.page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert tab.errors == []
    tab.context.close()


def test_city_without_outlines_shows_its_sites_and_says_what_is_missing(
    servers: tuple[Server, Server], browser: Any
) -> None:
    tab = Tab(browser, servers[1].url)
    figure = tab.figure()
    metas = [t["meta"] for t in figure["traces"] if t["meta"]]
    assert not any(m.startswith("district:") for m in metas) and figure["fills"] == 0
    assert "sites:tonnage" in metas
    assert "Batas kecamatan belum tersedia" in tab.page.inner_text("#districts-body")
    assert tab.errors == []
    tab.context.close()
