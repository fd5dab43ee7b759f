"""The dashboard's "today" is the chosen city's date, in that city's own time zone."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from dashboard.client import ApiClient, ApiUnavailable
from pisman.settings import get_settings


def _client_in(zone: str | None, monkeypatch: pytest.MonkeyPatch) -> ApiClient:
    client = ApiClient("http://127.0.0.1:9", None, city="somewhere")

    def meta() -> object:
        if zone is None:
            raise ApiUnavailable("down")
        return SimpleNamespace(city=SimpleNamespace(timezone=zone))

    monkeypatch.setattr(client, "meta", meta)
    return client


def test_today_follows_the_chosen_citys_time_zone_not_the_deployments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # UTC+14 and UTC-11 are 25 hours apart: their dates differ at every moment.
    east = _client_in("Pacific/Kiritimati", monkeypatch).today()
    west = _client_in("Pacific/Pago_Pago", monkeypatch).today()
    assert east == datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert west == datetime.now(ZoneInfo("Pacific/Pago_Pago")).date()
    assert east != west


def test_without_the_api_or_with_a_bad_zone_today_is_the_deployments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = datetime.now(get_settings().tz).date()
    assert _client_in(None, monkeypatch).today() == deployment
    assert _client_in("Not/AZone", monkeypatch).today() == deployment
