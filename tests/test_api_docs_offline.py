"""The API's /docs page works with no internet: every asset comes from the API itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from pisman.settings import Settings
from tests.support.api_server import running_api

pytestmark = pytest.mark.backend("postgresql", reason="the docs page reads no data")
TIMEOUT_MS = 15_000
LOCAL_HOST = "127.0.0.1"
EXTERNAL_URL = re.compile(r"""(?:https?:)?//[^\s"'<>]+""", flags=re.I)


@pytest.fixture(scope="module")
def api_url(module_db_url: str) -> Iterator[str]:
    """The API in a real server on a free local port."""
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=module_db_url, PISMAN_CITY="apitown", MQTT_URL="mqtt://127.0.0.1:1"
    )
    with running_api(settings) as url:
        yield url


def _open_offline(browser: Any, url: str) -> tuple[Any, list[str], list[str]]:
    """Open url with every request to another host aborted; the page, those requests, console errors."""
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        request_url = route.request.url
        if urlsplit(request_url).hostname == LOCAL_HOST or request_url.startswith(
            ("data:", "blob:")
        ):
            route.continue_()
        else:
            outside.append(request_url)
            route.abort()

    page.route("**/*", guard)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="networkidle", timeout=TIMEOUT_MS)
    return page, outside, errors


@pytest.mark.browser
def test_docs_page_shows_every_operation_without_leaving_the_api_host(
    api_url: str, browser: Any
) -> None:
    page, outside, errors = _open_offline(browser, f"{api_url}/docs")
    try:
        tonnage = page.locator(".opblock", has_text="/v1/tonnage").first
        tonnage.wait_for(state="visible", timeout=TIMEOUT_MS)
        page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
        assert page.locator(".opblock").count() > 10
    finally:
        page.context.close()
    assert outside == []
    assert errors == []


def test_docs_html_names_no_outside_address_and_runs_only_its_own_scripts(api_url: str) -> None:
    page = httpx.get(api_url + "/docs", timeout=10)
    assert page.status_code == 200
    assert EXTERNAL_URL.findall(page.text) == []
    csp = page.headers["content-security-policy"]
    assert "http" not in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    for asset in re.findall(r"""(?:src|href)="([^"]+)\"""", page.text):
        assert asset.startswith("/"), asset
        assert httpx.get(api_url + asset, timeout=10).status_code == 200, asset


def test_redoc_is_not_served_since_its_bundle_would_reach_outside(api_url: str) -> None:
    assert httpx.get(api_url + "/redoc", timeout=10).status_code == 404
