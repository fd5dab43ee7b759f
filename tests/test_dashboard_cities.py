"""One dashboard for every city of the deployment: a user allowed on several cities switches in the
top bar and sees that city's figures; a user limited to one city sees no switcher; a choice the user
may not see is refused with a message (and the API refuses it too)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from bench.dashboard.seed import ZONE, seed_city, seed_weighings
from bench.dashboard.servers import Server
from dashboard import format as fmt
from pisman import users
from tests.support.dashboard_stack import api_and_dashboard
from tests.test_dashboard_browser import PASSWORD, TIMEOUT_MS, Tab, fresh_tab, log_in

pytestmark = pytest.mark.browser


# user -> cities the account is limited to (empty: every city)
ACCOUNTS: dict[str, list[str]] = {
    "dua": ["testville", "otherville"],
    "satu": ["otherville"],
}


@dataclass(frozen=True, slots=True)
class Stack:
    """The API and one dashboard (default city testville) over three cities."""

    api: Server
    dashboard: Server

    def collected_today(self, username: str, city: str) -> float:
        """Today's collected tonnage of `city` as the API answers it to `username`."""
        with httpx.Client(base_url=self.api.url, timeout=10) as http:
            token = login_token(http, username)
            response = http.get(
                "/v1/progress",
                params={"city": city, "trend_days": 1},
                headers={"Authorization": f"Bearer {token}"},
            )
        response.raise_for_status()
        return float(response.json()["day"]["collected_t"])


_TOKENS: dict[tuple[str, str], str] = {}


def login_token(http: httpx.Client, username: str) -> str:
    """A session token for the user, straight from the API (one login per user and API)."""
    key = (str(http.base_url), username)
    if key not in _TOKENS:
        response = http.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
        response.raise_for_status()
        _TOKENS[key] = str(response.json()["token"])
    return _TOKENS[key]


@pytest.fixture(scope="module")
def stack(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """testville and otherville with different weighings today, thirdville nobody here may see."""
    today = datetime.now(ZONE).date()
    with psycopg.connect(module_db_url) as conn:
        for city_id, scale in (("testville", 1.0), ("otherville", 3.0), ("thirdville", 1.0)):
            city = seed_city(conn, city_id=city_id, districts=1, bins_per_depot=0)
            seed_weighings(conn, city, first_day=today - timedelta(days=1), days=2, scale=scale)
        for username, cities in ACCOUNTS.items():
            users.add_user(conn, username=username, password=PASSWORD, role="viewer", cities=cities)
    with api_and_dashboard(module_db_url, tmp_path_factory, "cities") as (api, dash):
        yield Stack(api, dash)


@pytest.fixture
def new_tab(browser: Any) -> Iterator[Tab]:
    """A fresh context (no cookie), not logged in yet."""
    context, tab = fresh_tab(browser)
    yield tab
    context.close()


def _collected(tab: Tab) -> str:
    return tab.text("#ov-day-collected")


def test_the_api_lists_only_the_cities_a_caller_may_see_and_refuses_the_others(
    stack: Stack,
) -> None:
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:
        for username, cities in ACCOUNTS.items():
            headers = {"Authorization": f"Bearer {login_token(http, username)}"}
            answer = http.get("/v1/cities", headers=headers).json()
            assert sorted(c["city_id"] for c in answer["cities"]) == sorted(cities)
            assert answer["default_city_id"] == ("testville" if username == "dua" else "otherville")
            assert {c["name"] for c in answer["cities"]} <= {"Testville", "Otherville"}
            refused = http.get("/v1/progress", params={"city": "thirdville"}, headers=headers)
            assert refused.status_code == 403 and "limited to" in refused.json()["detail"]
        assert http.get("/v1/cities").status_code == 401


def _switcher_shows(tab: Tab, name: str) -> None:
    tab.page.wait_for_function(
        "n => (document.querySelector('#city-switch')?.innerText || '').includes(n)",
        arg=name,
        timeout=TIMEOUT_MS,
    )


def test_a_two_city_user_switches_and_sees_the_other_citys_figures(
    stack: Stack, new_tab: Tab
) -> None:
    tab = new_tab
    log_in(tab, stack.dashboard.url, "dua")
    tab.open(stack.dashboard.url + "/", "#ov-day-collected")
    testville = fmt.tonnes(stack.collected_today("dua", "testville"), "id")
    otherville = fmt.tonnes(stack.collected_today("dua", "otherville"), "id")
    assert testville != otherville  # the seeded cities differ (3x the loads)
    tab.page.wait_for_function(
        "t => document.querySelector('#ov-day-collected').innerText.trim() === t", arg=testville
    )
    _switcher_shows(tab, "Testville")

    tab.page.click("#city-choice")
    tab.page.click("text=Otherville")
    tab.page.wait_for_function(
        "t => { const e = document.querySelector('#ov-day-collected');"
        " return e && e.innerText.trim() === t; }",
        arg=otherville,
        timeout=TIMEOUT_MS,
    )
    # The figures come with the page's first view; the switcher's dropdown draws its value once
    # its own code has loaded, a moment later.
    _switcher_shows(tab, "Otherville")
    # The choice is kept for the session: another page asks about the same city.
    tab.open(stack.dashboard.url + "/districts", "#district-row-othervil-d01")
    assert tab.page.locator("#district-row-testvill-d01").count() == 0
    tab.open(stack.dashboard.url + "/", "#ov-day-collected")
    tab.page.wait_for_function(
        "t => document.querySelector('#ov-day-collected').innerText.trim() === t", arg=otherville
    )
    assert tab.errors == []


def test_a_one_city_user_sees_no_switcher_and_starts_in_that_city(
    stack: Stack, new_tab: Tab
) -> None:
    tab = new_tab
    log_in(tab, stack.dashboard.url, "satu")
    tab.open(stack.dashboard.url + "/", "#ov-day-collected")
    otherville = fmt.tonnes(stack.collected_today("satu", "otherville"), "id")
    # The dashboard's default city (testville) is not this user's: the user's own city instead.
    tab.page.wait_for_function(
        "t => document.querySelector('#ov-day-collected').innerText.trim() === t", arg=otherville
    )
    assert tab.page.locator("#city-choice").count() == 0
    assert tab.text("#city-name") == "Otherville"
    assert tab.page.locator(".state-error").count() == 0
    assert tab.errors == []


def _csrf(tab: Tab, dashboard_url: str) -> str:
    """The session's form token (the login page shows it in its form)."""
    tab.page.goto(dashboard_url + "/login")
    return str(tab.page.get_attribute("input[name=csrf]", "value"))


def test_a_forged_city_choice_is_refused_with_a_message(stack: Stack, new_tab: Tab) -> None:
    tab = new_tab
    log_in(tab, stack.dashboard.url, "satu")
    csrf = _csrf(tab, stack.dashboard.url)
    request = tab.page.request
    for city in ("testville", "thirdville", "no-such-city", "x" * 500, ""):
        refused = request.post(
            stack.dashboard.url + "/city",
            form={"city": city, "csrf": csrf, "next": "/", "lang": "id"},
            max_redirects=0,
        )
        assert refused.status == 403, (city, refused.status)
        assert "tidak tersedia untuk akun Anda" in refused.text()
    english = request.post(
        stack.dashboard.url + "/city",
        form={"city": "testville", "csrf": csrf, "next": "/", "lang": "en"},
        max_redirects=0,
    )
    assert english.status == 403 and "not available to your account" in english.text()
    # Without the form's token: refused too (another site cannot switch a user's city).
    no_token = request.post(
        stack.dashboard.url + "/city", form={"city": "otherville", "next": "/"}, max_redirects=0
    )
    assert no_token.status == 400
    # The session still shows the user's own city.
    tab.open(stack.dashboard.url + "/", "#ov-day-collected")
    otherville = fmt.tonnes(stack.collected_today("satu", "otherville"), "id")
    tab.page.wait_for_function(
        "t => document.querySelector('#ov-day-collected').innerText.trim() === t", arg=otherville
    )
    # An allowed choice goes through the same door and lands on `next`.
    dua_context, dua = fresh_tab(tab.page.context.browser)
    try:
        log_in(dua, stack.dashboard.url, "dua")
        token = _csrf(dua, stack.dashboard.url)
        ok = dua.page.request.post(
            stack.dashboard.url + "/city",
            form={"city": "otherville", "csrf": token, "next": "//evil.example/"},
            max_redirects=0,
        )
        assert ok.status == 303 and ok.headers["location"] == "/"
    finally:
        dua_context.close()


def test_choosing_a_city_without_a_session_is_refused(stack: Stack) -> None:
    response = httpx.post(f"{stack.dashboard.url}/city", data={"city": "testville"}, timeout=10)
    assert response.status_code == 401
