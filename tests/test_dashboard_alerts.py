"""The alerts panel in headless Chromium against the real API: an officer (a viewer) sees a fire
first on the overview and the bins page, acknowledges it, and the panel shows who and when; in
both languages, and at 390 px without scrolling sideways."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from bench.dashboard.servers import Server
from dashboard import format as fmt
from pisman import keys, users
from tests.support.api_seed import CITY, seed_city
from tests.support.dashboard_stack import api_and_dashboard

pytestmark = pytest.mark.browser

PASSWORD = "Sampah-Bandung-2026"
TIMEOUT_MS = 15_000


def _reading(
    conn: psycopg.Connection, device_id: str, ts: datetime, seq: int, fill: float, **flags: Any
) -> None:
    site = conn.execute("SELECT site_id FROM device WHERE device_id = %s", (device_id,)).fetchone()
    assert site is not None
    conn.execute(
        "INSERT INTO bin_reading (ts, city_id, site_id, device_id, seq, fill_ratio, battery_pct,"
        " fire, lid_open) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            ts,
            CITY,
            site[0],
            device_id,
            seq,
            fill,
            flags.get("battery", 80),
            flags.get("fire", False),
            flags.get("lid_open", False),
        ),
    )
    conn.execute(
        "INSERT INTO device_state (device_id, city_id, last_seen_at, last_reading_ts, last_seq,"
        " connection, battery_pct, fill_ratio) VALUES (%s, %s, now(), %s, %s, 'online', %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET last_seen_at = now(),"
        " last_reading_ts = EXCLUDED.last_reading_ts, battery_pct = EXCLUDED.battery_pct",
        (device_id, CITY, ts, seq, flags.get("battery", 80), fill),
    )


class Stack:
    """The API, the dashboard, an API key for the test's own reads, and the database."""

    def __init__(self, api: Server, dashboard: Server, key: str, db_url: str) -> None:
        self.api, self.dashboard, self.key, self.db_url = api, dashboard, key, db_url

    def alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.api.url}/v1/alerts", params={"city": CITY}, headers={"X-API-Key": self.key}
        )
        r.raise_for_status()
        return list(r.json())


@pytest.fixture(scope="module")
def stack(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fire (the oldest alert), a newer full bin with a critical battery, an open lid."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn, bins=3)
        _reading(conn, "bin-000", now - timedelta(minutes=40), 1, 0.30, fire=True)
        _reading(conn, "bin-001", now - timedelta(minutes=5), 1, 0.95, battery=3)
        _reading(conn, "bin-002", now - timedelta(minutes=2), 1, 0.20, lid_open=True)
        users.add_user(
            conn, username="vina", password=PASSWORD, role="viewer", display_name="Vina Putri"
        )
        key = keys.create_key(conn, role="viewer", name="alerts-test")
    # No refresh while the test clicks: the acknowledgement itself must redraw the list.
    with api_and_dashboard(module_db_url, tmp_path_factory, "alerts", city=CITY, refresh_s=600) as (
        api,
        dash,
    ):
        yield Stack(api, dash, key, module_db_url)


class Officer:
    """One browser page logged in as the officer Vina (a viewer), with its console errors."""

    def __init__(self, page: Any, errors: list[str]) -> None:
        self.page, self.errors = page, errors


@pytest.fixture(scope="module")
def officer(browser: Any, stack: Stack) -> Iterator[Officer]:
    """Logged in once for the module (a login costs an Argon2 check and a page load)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.dashboard.url + "/login")
    page.fill("#username", "vina")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(stack.dashboard.url + "/", timeout=TIMEOUT_MS)
    yield Officer(page, errors)
    context.close()


def test_officer_sees_the_fire_first_acknowledges_it_and_sees_who_and_when(
    officer: Officer, stack: Stack
) -> None:
    api_alerts = stack.alerts()
    assert [a["kind"] for a in api_alerts][:2] == ["fire", "low_battery"]  # fire before newer
    fire = api_alerts[0]
    page = officer.page
    page.goto(stack.dashboard.url + "/")
    # Overview: counts by severity and the first few, the fire on top, in words and colour.
    page.wait_for_selector("#alerts-list-overview li", timeout=TIMEOUT_MS)
    first = page.locator("#alerts-list-overview li").first
    assert first.get_attribute("data-kind") == "fire"
    assert "alert-critical" in (first.get_attribute("class") or "")
    assert "KEBAKARAN" in first.inner_text() and "kritis" in first.inner_text().lower()
    assert page.locator("#alerts-list-overview li").count() == min(3, len(api_alerts))
    assert page.inner_text("#alerts-count-critical").startswith("2 ")
    assert page.inner_text("#alerts-count-open") == f"{len(api_alerts)} belum ditangani"
    assert "bin_full" not in page.inner_text("#alerts-panel-overview")  # no raw codes
    page.click("#alerts-see-all")
    page.wait_for_url(stack.dashboard.url + "/bins", timeout=TIMEOUT_MS)

    # Bins page: every alert, each with its button; acknowledge the fire.
    page.wait_for_selector("#alerts-list-bins li", timeout=TIMEOUT_MS)
    rows = page.locator("#alerts-list-bins li")
    assert rows.count() == len(api_alerts)
    assert [rows.nth(i).get_attribute("data-alert-id") for i in range(rows.count())] == [
        a["alert_id"] for a in api_alerts
    ]
    fire_row = page.locator(f'li[data-alert-id="{fire["alert_id"]}"]')
    fire_row.locator(".alert-ack-button").click()
    acked = fire_row.locator(".alert-acked")
    acked.wait_for(timeout=TIMEOUT_MS)
    kept = next(a for a in stack.alerts() if a["alert_id"] == fire["alert_id"])
    assert kept["acknowledged_by"] == "vina" and kept["acknowledged_by_name"] == "Vina Putri"
    when = fmt.timestamp(kept["acknowledged_at"], "id")
    assert acked.inner_text() == f"✓ Ditangani oleh Vina Putri, {when}"
    assert page.inner_text("#alerts-ack-notice") == "Ditandai ditangani."
    assert fire_row.locator(".alert-ack-button").count() == 0
    others = page.locator("#alerts-list-bins .alert-ack-button")
    assert others.count() == len(api_alerts) - 1

    # English: the same acknowledgement, in words.
    page.click("#lang-toggle")
    page.wait_for_function(
        "t => document.querySelector('#alerts-list-bins li .alert-acked')?.innerText === t",
        arg=f"✓ Acknowledged by Vina Putri, {fmt.timestamp(kept['acknowledged_at'], 'en')}",
        timeout=TIMEOUT_MS,
    )
    assert "FIRE" in page.locator("#alerts-list-bins li").first.inner_text()
    # The overview shows it too.
    page.goto(stack.dashboard.url + "/")
    page.wait_for_selector("#alerts-list-overview li .alert-acked", timeout=TIMEOUT_MS)
    assert "Vina Putri" in page.inner_text("#alerts-list-overview li >> nth=0")
    page.click("#lang-toggle")  # back to Bahasa Indonesia for the next test
    page.wait_for_function("() => document.documentElement.lang === 'id'")
    assert officer.errors == []


def test_alerts_panel_fits_a_390_px_phone(officer: Officer, stack: Stack) -> None:
    page = officer.page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        for path, selector in (("/", "#alerts-panel-overview"), ("/bins", "#alerts-panel-bins")):
            page.goto(stack.dashboard.url + path)
            page.wait_for_selector(f"{selector} li", timeout=TIMEOUT_MS)
            box = page.evaluate(
                "s => { const e = document.querySelector(s); const r = e.getBoundingClientRect();"
                " return {right: r.right, left: r.left, scroll: e.scrollWidth, client: e.clientWidth}; }",
                selector,
            )
            assert box["left"] >= 0 and box["right"] <= 390, (path, box)
            assert box["scroll"] <= box["client"], (path, box)
        assert officer.errors == []
    finally:
        page.set_viewport_size({"width": 1440, "height": 900})


def test_acknowledging_an_alert_that_ended_meanwhile_says_so(
    officer: Officer, stack: Stack
) -> None:
    page = officer.page
    page.goto(stack.dashboard.url + "/bins")
    lid = page.locator('#alerts-list-bins li[data-kind="lid_open"]')
    lid.wait_for(timeout=TIMEOUT_MS)
    assert "Tutup kontainer terbuka" in lid.inner_text()
    with psycopg.connect(stack.db_url) as conn:  # someone closed the lid
        _reading(conn, "bin-002", datetime.now(UTC), 2, 0.20)
    lid.locator(".alert-ack-button").click()
    page.wait_for_selector("#alerts-ack-notice", timeout=TIMEOUT_MS)
    assert "sudah selesai" in page.inner_text("#alerts-ack-notice")
    assert lid.count() == 0  # the list is redrawn without it
    assert not any(a["kind"] == "lid_open" for a in stack.alerts())
    assert officer.errors == []
