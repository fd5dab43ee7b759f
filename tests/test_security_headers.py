"""Security headers on API and dashboard responses: no sniffing, no framing, no referrer to other
sites, a CSP."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pisman.settings import get_settings
from tests.support.api_seed import api_client, seed_city

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.fixture(scope="module")
def city_db(module_db_url: str) -> str:
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
    return module_db_url


def test_every_api_answer_forbids_sniffing_framing_referrers_and_storing(
    city_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(city_db, monkeypatch, role="admin") as (client, _):
        responses = {
            "json": client.get("/v1/meta"),
            "csv": client.get("/v1/exports/monthly.csv", params={"month": "2026-03"}),
            "401": client.get("/v1/meta", headers={"X-API-Key": "nope"}),
            "422": client.get("/v1/tonnage", params={"from": "x", "to": "y"}),
            "404": client.get("/no/such/path"),
            "healthz": client.get("/healthz"),
            "openapi": client.get("/openapi.json"),
        }
    for name, response in responses.items():
        for header, value in COMMON.items():
            assert response.headers.get(header) == value, (name, header)
        assert response.headers.get("cache-control") == "no-store", name
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, name


def test_api_docs_page_runs_only_its_own_scripts_and_is_not_framed(
    city_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(city_db, monkeypatch) as (client, _):
        docs = client.get("/docs")
    csp = docs.headers["content-security-policy"]
    assert docs.status_code == 200
    assert "frame-ancestors 'none'" in csp and "http" not in csp
    allowed = _script_src(csp)
    assert "'self'" in allowed and "'unsafe-inline'" not in allowed and "*" not in allowed
    # The one inline start-up script is admitted by its hash; every other script is the API's own.
    inline = re.findall(r"<script>(.*?)</script>", docs.text, flags=re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert allowed == ["'self'", f"'sha256-{digest}'"]
    assert docs.headers["x-frame-options"] == "DENY"


@pytest.fixture(scope="module")
def dashboard() -> Iterator[Any]:
    from dashboard.app import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("API_URL", "http://127.0.0.1:1")
        get_settings.cache_clear()
        client = create_app().server.test_client()
        # A logged-in session the dashboard does not re-check here (no API behind it).
        with client.session_transaction() as session:
            session["api_token"] = "ps_" + "x" * 43
            session["role"] = "viewer"
            session["checked_at"] = time.time() + 86400
        yield client
        get_settings.cache_clear()


def _script_src(csp: str) -> list[str]:
    directive = next(d.strip() for d in csp.split(";") if d.strip().startswith("script-src"))
    return directive.split()[1:]


def test_dashboard_pages_forbid_framing_and_run_only_their_own_scripts(dashboard: Any) -> None:
    page = dashboard.get("/")
    html = page.get_data(as_text=True)
    # The dashboard sends a Referer to itself only: its layout request learns the page's
    # address from it (dashboard/first_view.py); no other site ever gets one.
    own = {**COMMON, "referrer-policy": "same-origin"}
    for path_response in (page, dashboard.get("/_dash-layout"), dashboard.get("/reports")):
        for header, value in own.items():
            assert path_response.headers.get(header) == value, header
        assert "frame-ancestors 'none'" in path_response.headers["content-security-policy"]
    allowed = _script_src(page.headers["content-security-policy"])
    assert "'unsafe-inline'" not in allowed and "*" not in allowed
    # Every inline script the page carries is admitted by its hash; nothing else is.
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", html, flags=re.S)
    executable = [body for attrs, body in inline if "application/json" not in attrs and body]
    assert executable, "expected Dash's inline renderer script"
    for body in executable:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed, body[:80]
    # Every external script is served from the dashboard itself.
    sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)


def test_dashboard_callback_answers_are_not_stored(dashboard: Any) -> None:
    layout = dashboard.get("/_dash-layout")
    asset = dashboard.get("/assets/style.css")
    assert layout.headers["cache-control"] == "no-store"
    assert asset.status_code == 200 and asset.headers.get("cache-control") != "no-store"
