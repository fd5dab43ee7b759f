"""Every page of the dashboard on a 390 px phone (headless Chromium, after login) in both languages:
nothing wider than the screen (document.documentElement.scrollWidth <= 390); wide tables scroll
inside their own box."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from bench.dashboard.seed import ZONE, seed_bins, seed_city, seed_weighings
from bench.dashboard.servers import Server
from pisman import users
from tests.support.dashboard_stack import api_and_dashboard
from tests.test_dashboard_browser import PASSWORD, Tab, log_in

pytestmark = pytest.mark.browser


PHONE = {"width": 390, "height": 844}
READY_MS = 30_000  # a page drawn on a busy 2-core machine (the whole suite runs beside it)


@pytest.fixture(scope="module")
def dashboard(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A seeded city (two weeks of weighings, bins), the API and a dashboard."""
    today = datetime.now(ZONE).date()
    with psycopg.connect(module_db_url) as conn:
        city = seed_city(conn, city_id="testville", districts=3)
        seed_weighings(conn, city, first_day=today - timedelta(days=13), days=14)
        seed_bins(conn, city)
        users.add_user(conn, username="pandu", password=PASSWORD, role="planner")
    with api_and_dashboard(module_db_url, tmp_path_factory, "phone") as (_api, dash):
        yield dash


# What each page shows once its figures are drawn (the width is measured after that).
PHONE_PAGES = {
    "/": "#ov-day-collected",
    "/districts": "#district-table",
    "/bins": "#bins-table",
    "/reports": "#report-table",
    "/collection": "#plan-body .panel, #plan-body .state",
}
# The outermost elements sticking out to the right, to name them when a page is too wide.
STICKING_OUT = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= window.innerWidth + 0.5)
  .slice(0, 8)
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + String(e.className).slice(0, 40)
       + ' ' + Math.round(e.getBoundingClientRect().right) + 'px')"""


def _open(tab: Tab, url: str, ready: str) -> None:
    tab.page.goto(url)
    tab.page.wait_for_selector(ready, timeout=READY_MS)


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_page_fits_a_390_px_phone_without_sideways_scrolling(
    dashboard: Server, browser: Any, lang: str
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    tab = Tab(context.new_page(), [])
    tab.page.on("pageerror", lambda e: tab.errors.append(f"pageerror: {e}"))
    try:
        log_in(tab, dashboard.url, "pandu")
        _open(tab, dashboard.url + "/", "#ov-day-collected")
        if lang == "en":
            tab.page.click("#lang-toggle")
            tab.page.wait_for_function("() => document.documentElement.lang === 'en'")
        for path, ready in PHONE_PAGES.items():
            _open(tab, dashboard.url + path, ready)
            tab.page.wait_for_load_state("networkidle")
            tab.page.wait_for_timeout(200)  # charts settle to their box
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, lang, width, tab.page.evaluate(STICKING_OUT))
        assert tab.errors == []
    finally:
        context.close()


def test_a_wide_table_scrolls_inside_its_own_box_on_a_phone(
    dashboard: Server, browser: Any
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    tab = Tab(context.new_page(), [])
    try:
        log_in(tab, dashboard.url, "pandu")
        _open(tab, dashboard.url + "/districts", "#district-table")
        box = tab.page.evaluate(
            "() => { const t = document.querySelector('#district-table');"
            " return [t.clientWidth, t.scrollWidth, getComputedStyle(t).overflowX]; }"
        )
        client_width, scroll_width, overflow = box
        assert client_width <= PHONE["width"] and overflow == "auto"
        assert scroll_width > client_width  # the columns are all there, reached by scrolling
    finally:
        context.close()
