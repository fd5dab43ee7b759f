"""A page's first view comes with the app's layout (dashboard/first_view.py): no router callback,
the preloaded layout request used once, the figures in the language of the user's cookie; and the
page's scripts are the trimmed set (Plotly's basic bundle, no core-js polyfill)."""

from __future__ import annotations

import importlib
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from bench.dashboard.seed import ZONE, seed_city, seed_weighings
from bench.dashboard.servers import Server
from dashboard import date_locales
from dashboard.i18n import t
from pisman import users
from tests.support.browser import headless_chromium
from tests.support.dashboard_app import bare_dashboard
from tests.support.dashboard_login import PASSWORD
from tests.support.dashboard_stack import api_and_dashboard
from tests.test_dashboard_browser import fresh_tab, log_in

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
USER = "fira"
FIGURES = "#ov-day-residual"
TREND = "#ov-trend .js-plotly-plot"


@pytest.fixture(scope="module")
def dashboard(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Testville with 10 days of weighings, a viewer, the API and one dashboard."""
    today = datetime.now(ZONE).date()
    with psycopg.connect(module_db_url) as conn:
        city = seed_city(conn, city_id="testville")
        seed_weighings(conn, city, first_day=today - timedelta(days=9), days=10)
        users.add_user(conn, username=USER, password=PASSWORD, role="viewer")
    with api_and_dashboard(module_db_url, tmp_path_factory, "first-view") as (_api, dash):
        yield dash


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as b:
        yield b


class Watched:
    """A logged-in page that keeps every request it made and its console errors."""

    def __init__(self, browser: Any, url: str, init_script: str | None = None) -> None:
        self.context, tab = fresh_tab(browser)
        if init_script:
            self.context.add_init_script(init_script)
        self.page, self.errors = tab.page, tab.errors
        self.requests: list[Any] = []
        self.page.on("request", lambda r: self.requests.append(r))
        log_in(tab, url, USER, PASSWORD)
        self.page.wait_for_selector(FIGURES, timeout=TIMEOUT_MS)
        self.page.wait_for_function(
            f"() => document.querySelector('{TREND}')?.data?.length > 0", timeout=TIMEOUT_MS
        )

    def paths(self, part: str) -> list[str]:
        return [r.url for r in self.requests if part in r.url]

    def callbacks(self) -> list[dict[str, Any]]:
        """The bodies of every callback request sent so far."""
        return [
            json.loads(r.post_data or "{}")
            for r in self.requests
            if "/_dash-update-component" in r.url
        ]

    def callback_outputs(self) -> list[str]:
        """The outputs of every callback request sent so far."""
        return [str(body.get("output", "")) for body in self.callbacks()]

    def reload(self) -> None:
        self.requests.clear()
        self.page.reload()
        self.page.wait_for_selector(FIGURES, timeout=TIMEOUT_MS)
        self.page.wait_for_function(
            f"() => document.querySelector('{TREND}')?.data?.length > 0", timeout=TIMEOUT_MS
        )
        self.page.wait_for_timeout(500)  # callbacks that would follow the first view


@pytest.fixture
def overview(browser: Any, dashboard: Server) -> Iterator[Watched]:
    watched = Watched(browser, dashboard.url)
    yield watched
    watched.context.close()


def test_the_overview_arrives_with_the_layout_without_the_router_or_a_second_layout_request(
    overview: Watched,
) -> None:
    overview.reload()
    assert len(overview.paths("/_dash-layout")) == 1  # the preload was used, not fetched again
    outputs = overview.callback_outputs()
    assert not any("_pages_content" in o for o in outputs), outputs
    assert not any("overview-body" in o for o in outputs), outputs  # the figures came along
    # And the alerts, unless they were slower than the figures (a busy machine): then only
    # their own one-shot interval asks for them.
    alerts = [b for b in overview.callbacks() if "alerts-body-overview" in str(b.get("output"))]
    assert all(b.get("changedPropIds") == ["ov-alerts-late.n_intervals"] for b in alerts), alerts
    overview.page.locator("#alerts-body-overview h2").wait_for(timeout=TIMEOUT_MS)
    assert overview.page.inner_text(FIGURES).strip()
    # The trimmed scripts: Plotly's basic bundle, the regenerator runtime, no core-js polyfill.
    assert overview.paths("plotly-basic-") and not overview.paths("plotly.min.js")
    assert overview.paths("regenerator-runtime") and not overview.paths("polyfill@")
    assert overview.errors == []


PICTURE = "#ov-trend-picture"


def test_the_trend_is_a_picture_until_plotly_has_drawn_over_it(overview: Watched) -> None:
    """The first view's trend comes as the server's still picture (dashboard/charts.py), so the
    page needs no Plotly to show it; Plotly's chart then covers it and the picture is hidden."""
    overview.reload()
    picture = overview.page.locator(PICTURE)
    assert picture.get_attribute("src", timeout=TIMEOUT_MS).startswith("data:image/svg+xml")
    assert "Kurangi" in (picture.get_attribute("alt") or "")
    assert picture.evaluate("el => el.complete && el.naturalHeight") > 0
    overview.page.wait_for_function(
        "s => getComputedStyle(document.querySelector(s)).visibility === 'hidden'",
        arg=PICTURE,
        timeout=TIMEOUT_MS,
    )
    # The chart lies where the picture was, the same size.
    boxes = overview.page.evaluate(
        "s => [document.querySelector(s), document.querySelector('#ov-trend .main-svg')]"
        ".map(el => { const r = el.getBoundingClientRect(); return [r.x, r.y, r.width]; })",
        PICTURE,
    )
    assert boxes[0] == pytest.approx(boxes[1], abs=2), boxes
    assert overview.errors == []


def test_without_plotly_the_overview_still_shows_its_trend(browser: Any, dashboard: Server) -> None:
    """A browser that cannot load Plotly (a proxy blocks it, a flaky phone connection) still gets
    every figure and the trend's picture."""
    context, tab = fresh_tab(browser)
    try:
        context.route(re.compile(r".*/plotly-basic-[^/]*\.js.*"), lambda route: route.abort())
        log_in(tab, dashboard.url, USER, PASSWORD)
        tab.page.wait_for_selector(FIGURES, timeout=TIMEOUT_MS)
        picture = tab.page.locator(PICTURE)
        tab.page.wait_for_function(
            "s => document.querySelector(s)?.naturalHeight > 0", arg=PICTURE, timeout=TIMEOUT_MS
        )
        tab.page.wait_for_timeout(1000)  # time enough for a chart that was going to come
        assert picture.is_visible()
        assert tab.page.locator("#ov-trend .main-svg").count() == 0
        assert tab.page.inner_text(FIGURES).strip()
    finally:
        context.close()


def test_a_range_picked_later_is_drawn_by_plotly_alone(overview: Watched) -> None:
    """Only the first view carries the picture: the callbacks' redraws are Plotly's chart."""
    first = (datetime.now(ZONE).date() - timedelta(days=20)).isoformat()
    overview.page.evaluate(
        "s => window.dash_clientside.set_props('ov-trend-range', {start_date: s})", first
    )
    overview.page.wait_for_function(
        "() => document.querySelector('#ov-trend .js-plotly-plot')?.data?.[0]?.x?.length > 19"
        " && !document.querySelector('#ov-trend-picture')",
        timeout=TIMEOUT_MS,
    )
    assert overview.errors == []


def test_navigating_in_the_page_still_goes_through_the_router(overview: Watched) -> None:
    overview.requests.clear()
    overview.page.click("#nav-districts")
    overview.page.wait_for_selector("#districts-map .js-plotly-plot", timeout=TIMEOUT_MS)
    assert any("_pages_content" in o for o in overview.callback_outputs())
    overview.page.go_back()
    overview.page.wait_for_selector(FIGURES, timeout=TIMEOUT_MS)
    assert overview.page.inner_text("#ov-trend-title").strip()
    assert overview.errors == []


def test_the_chosen_language_draws_the_next_first_view(overview: Watched) -> None:
    overview.page.click("#lang-toggle")
    english = t("ov_trend_range", "en")
    overview.page.wait_for_function(
        "t => document.querySelector('#ov-trend-range-label')?.innerText.trim() === t",
        arg=english,
        timeout=TIMEOUT_MS,
    )
    cookies = {c["name"]: c["value"] for c in overview.context.cookies()}
    assert cookies.get("pisman_lang") == "en"
    overview.reload()
    assert overview.page.inner_text("#ov-trend-range-label").strip() == english
    assert overview.page.inner_text("#nav-overview").strip() == t("nav_overview", "en")
    # Drawn in English by the server: no callback had to translate the first view.
    assert not any("overview-body" in o for o in overview.callback_outputs())
    overview.page.click("#lang-toggle")  # back to Indonesian for the next tests
    overview.page.wait_for_function(
        "t => document.querySelector('#ov-trend-range-label')?.innerText.trim() === t",
        arg=t("ov_trend_range", "id"),
        timeout=TIMEOUT_MS,
    )


def test_a_language_kept_only_in_the_browser_still_wins(browser: Any, dashboard: Server) -> None:
    # A browser that chose English before the cookie existed: localStorage says en, no cookie.
    watched = Watched(
        browser, dashboard.url, init_script="window.localStorage.setItem('lang', '\"en\"');"
    )
    try:
        watched.page.wait_for_function(
            "t => document.querySelector('#ov-trend-range-label')?.innerText.trim() === t",
            arg=t("ov_trend_range", "en"),
            timeout=TIMEOUT_MS,
        )
        assert watched.page.inner_text("#nav-overview").strip() == t("nav_overview", "en")
        assert watched.errors == []
    finally:
        watched.context.close()


@contextmanager
def _logged_in(dashboard: Server) -> Iterator[httpx.Client]:
    """An HTTP client holding the viewer's dashboard session."""
    with httpx.Client(base_url=dashboard.url, timeout=30) as http:
        form = http.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        answer = http.post(
            "/login", data={"csrf": csrf.group(1), "username": USER, "password": PASSWORD}
        )
        assert answer.status_code in (200, 303), answer.text[:200]
        yield http


def _location(layout: dict[str, Any]) -> dict[str, Any]:
    """The props of the layout's _pages_location component."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("props", {})
            if isinstance(props, dict) and props.get("id") == "_pages_location":
                found.append(props)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(layout)
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize(
    "referer",
    [
        None,
        "http://evil.example/",  # another site
        "{origin}/nope",  # no such page
        "{origin}/" + "x" * 5000,  # absurdly long
        "{origin}:99999/",  # a malformed address
        "javascript:alert(1)",
        "{origin}/reports?month=%ZZ&month=2026-11&\x00",
    ],
)
def test_the_layout_request_takes_only_its_own_pages_from_the_referer(
    dashboard: Server, referer: str | None
) -> None:
    with _logged_in(dashboard) as http:
        headers = {"Referer": referer.format(origin=dashboard.url)} if referer else {}
        try:
            answer = http.get("/_dash-layout", headers=headers)
        except httpx.LocalProtocolError:  # the client refuses to send the header at all
            return
        assert answer.status_code == 200, answer.text[:300]
        location = _location(answer.json())
        if referer and referer.startswith("{origin}/reports"):
            assert location["pathname"] == "/reports"  # a page of ours, its query left to it
        else:
            assert location.get("pathname") is None  # Dash's own container: the router draws


def test_the_layout_request_draws_the_page_it_comes_from(dashboard: Server) -> None:
    with _logged_in(dashboard) as http:
        answer = http.get("/_dash-layout", headers={"Referer": f"{dashboard.url}/districts?x=1"})
        assert answer.status_code == 200
        layout = answer.json()
        location = _location(layout)
        assert (location["pathname"], location["search"]) == ("/districts", "?x=1")
        assert "page-districts" in json.dumps(layout)


def _axis_months(page: Any) -> set[str]:
    """The month names on the trend's date axis."""
    ticks = page.eval_on_selector_all("#ov-trend .xtick text", "els => els.map(e => e.textContent)")
    return {word for text in ticks for word in text.split() if word.isalpha()}


def test_plotly_names_months_in_the_pages_language(overview: Watched) -> None:
    locale = "() => document.querySelector('#ov-trend .js-plotly-plot')?._context?.locale"
    assert overview.page.evaluate(locale) == "id"
    indonesian = date_locales.locale_dictionary("id")["format"]["shortMonths"]
    assert "Des" in indonesian and "Agu" in indonesian  # Babel's CLDR names, not Plotly's
    months = _axis_months(overview.page)
    assert months and months <= set(indonesian), months
    overview.page.click("#lang-toggle")
    overview.page.wait_for_function(f"() => ({locale})() === 'en'", timeout=TIMEOUT_MS)
    overview.page.wait_for_timeout(300)
    english = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
    months = _axis_months(overview.page)
    assert months and months <= english, months
    overview.page.click("#lang-toggle")
    overview.page.wait_for_function(f"() => ({locale})() === 'id'", timeout=TIMEOUT_MS)
    assert overview.errors == []


class _SlowApi:
    """An API client whose every answer takes longer than the first view may wait."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def __getattr__(self, name: str) -> Any:
        def answer(*_args: Any, **_kwargs: Any) -> Any:
            time.sleep(self.delay_s)
            from dashboard.client import ApiUnavailable

            raise ApiUnavailable("too slow")

        return answer


def _components(node: Any) -> Iterator[Any]:
    yield node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            yield from _components(child)


def test_a_slow_api_leaves_the_figures_to_the_callbacks_at_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dash

    app = bare_dashboard(db_url, monkeypatch)
    name = next(p["module"] for p in dash.page_registry.values() if p["path"] == "/")
    page = importlib.import_module(name)
    monkeypatch.setattr(page, "get_client", lambda: _SlowApi(2.0))
    monkeypatch.setattr(page, "FIRST_VIEW_WAIT_S", 0.3)
    with app.server.test_request_context("/"):
        started = time.monotonic()
        drawn = page.layout()
        waited = time.monotonic() - started
    assert waited < 1.5  # not the API's 2 s (each of several calls)
    by_id = {getattr(c, "id", None): c for c in _components(drawn)}
    for late in (by_id["ov-first-view"], by_id["ov-alerts-late"]):
        assert late.disabled is False and late.max_intervals == 1  # the callbacks take over
    assert "loading-placeholder" in by_id["overview-body"].className


def test_the_date_pickers_name_months_like_every_other_date_on_the_page(
    overview: Watched,
) -> None:
    from babel.dates import format_date

    from dashboard import format as fmt

    today = datetime.now(ZONE).date()
    end = "#ov-trend-end"
    # The picked day reads as Babel writes it elsewhere on the page ("6 Des 2026", not "Dec").
    assert overview.page.input_value(end) == fmt.day(today, "id")
    first = today - timedelta(days=89)
    overview.page.click("#ov-trend-start")
    # The calendar opens on that month, named by CLDR, with CLDR's weekdays ("Sen", not "Mo").
    caption = format_date(first, "LLLL", locale="id_ID")
    month = overview.page.locator(".dash-dropdown-value-item").filter(has_text=caption)
    month.first.wait_for(timeout=TIMEOUT_MS)
    monday = format_date(date(2026, 11, 30), "EEE", locale="id_ID")
    assert monday == "Sen" and overview.page.get_by_text(monday, exact=True).count() >= 1
    assert overview.page.get_by_text("Mo", exact=True).count() == 0
    overview.page.keyboard.press("Escape")
    overview.page.click("#lang-toggle")
    overview.page.wait_for_function(
        "([s, v]) => document.querySelector(s)?.value === v",
        arg=[end, fmt.day(today, "en")],
        timeout=TIMEOUT_MS,
    )
    overview.page.click("#lang-toggle")
    overview.page.wait_for_function(
        "([s, v]) => document.querySelector(s)?.value === v",
        arg=[end, fmt.day(today, "id")],
        timeout=TIMEOUT_MS,
    )
    assert overview.errors == []


def test_the_refresh_callbacks_listen_to_the_late_first_view(dashboard: Server) -> None:
    # They do not fire on load: the one-shot interval is what starts them when the API was slow.
    with _logged_in(dashboard) as http:
        dependencies = http.get("/_dash-dependencies").json()
    for output, late in (
        ("overview-body.children", "ov-first-view"),
        ("alerts-body-overview.children", "ov-alerts-late"),
    ):
        callback = next(c for c in dependencies if output in c["output"])
        assert callback["prevent_initial_call"] is True, output
        assert {"id": late, "property": "n_intervals"} in callback["inputs"], output
