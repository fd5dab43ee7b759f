"""The dashboard's Dash app in the test's process, its API unreachable (nothing listens on :9)."""

from __future__ import annotations

from typing import Any

import pytest


def bare_dashboard(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh create_app() over the test's database, settings re-read."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("API_URL", "http://127.0.0.1:9")
    from pisman.settings import get_settings

    get_settings.cache_clear()
    from dashboard.app import create_app

    return create_app()
