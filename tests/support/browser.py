"""Headless Chromium (Debian's package) for browser tests, with the flags this machine needs.

One Chromium per test process, shared by consecutive browser tests (each opens its own
context): launching it costs about a second of CPU per module and backend. Playwright's sync
API marks the thread's asyncio loop as running while it is started, so `asyncio.run` fails
beside it; tests/conftest.py closes it (close_chromium) before a test that uses no browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

_running = ExitStack()  # the Playwright driver and the Chromium it launched, while open
_browser: list[Any] = []  # that Chromium, when launched


def _launch() -> Any:
    """The running Chromium, launched now if it is not (or no longer) running."""
    if _browser and _browser[0].is_connected():
        return _browser[0]
    close_chromium()
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium")
    playwright = _running.enter_context(playwright_sync.sync_playwright())
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    _running.callback(browser.close)
    _browser.append(browser)
    return browser


def close_chromium() -> None:
    """Close the shared Chromium and its Playwright driver, if they run."""
    _browser.clear()
    _running.close()


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """The test process's headless Chromium driven by Playwright. It stays open after the block
    for the next browser test; open a new context per test (no cookie, no storage)."""
    yield _launch()
