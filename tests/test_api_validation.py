"""Hostile input gets a 422 that says what to fix: every date form, every admin body."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi import HTTPException
from hypothesis import given, settings
from hypothesis import strategies as st

from api.params import MAX_YEAR, MIN_YEAR, parse_instant, parse_local_date, parse_month
from tests.support.api_seed import api_client, seed_city

TZ = ZoneInfo("Asia/Jakarta")


@pytest.fixture(scope="module")
def city_db(module_db_url: str) -> str:
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
    return module_db_url


OUT_OF_RANGE = [
    ("/v1/tonnage", {"from": "0001-01-01", "to": "0001-01-02", "bucket": "hour"}),
    ("/v1/tonnage", {"from": "0001-01-01", "to": "0001-01-02", "bucket": "week"}),
    ("/v1/tonnage", {"from": "9999-12-30", "to": "9999-12-31", "bucket": "month"}),
    ("/v1/tonnage", {"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-02"}),
    ("/v1/tonnage", {"from": "9999-12-31T23:59:59-12:00", "to": "9999-12-31T23:59:59"}),
    ("/v1/tonnage", {"from": "1969-12-31", "to": "1970-01-02"}),
    ("/v1/progress", {"date": "0001-01-01"}),
    ("/v1/progress", {"date": "9999-12-31"}),
    ("/v1/reports/national", {"month": "0001-01"}),
    ("/v1/reports/national", {"month": "0000-01"}),
    ("/v1/exports/monthly.csv", {"month": "9999-12"}),
    ("/v1/exports/monthly.csv", {"month": "2026-01", "to_month": "0000-12"}),
    ("/v1/exports/monthly.xlsx", {"month": "0001-01"}),
]


@pytest.mark.parametrize(("path", "params"), OUT_OF_RANGE, ids=[str(p) for _, p in OUT_OF_RANGE])
def test_dates_outside_1970_to_2200_in_any_form_get_422_never_500(
    city_db: str, monkeypatch: pytest.MonkeyPatch, path: str, params: dict[str, str]
) -> None:
    with api_client(city_db, monkeypatch, role="admin") as (client, _):
        response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert "between the years 1970 and 2200" in response.json()["detail"]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=40)
    | st.dates().map(str)
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
)
def test_any_date_text_parses_into_the_allowed_years_or_gives_a_422(text: str) -> None:
    for parse in (
        lambda: parse_instant("from", text, TZ),
        lambda: parse_local_date("date", text, TZ),
        lambda: parse_month("month", text[:7]),
    ):
        try:
            value = parse()
        except HTTPException as exc:
            assert exc.status_code == 422 and exc.detail
            continue
        assert MIN_YEAR <= value.year <= MAX_YEAR
        # The routes step around a date (weeks, months, a day after): never out of range.
        assert (value - timedelta(days=800)) < (value + timedelta(days=800))


def test_target_valid_from_in_year_0001_gets_422(
    city_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"value": 1500, "period_days": 1, "valid_from": "0001-01-01", "source": "test"}
    with api_client(city_db, monkeypatch, role="admin") as (client, _):
        response = client.put("/v1/targets/generation_t", json=body)
        listed = client.get("/v1/targets").json()
    assert response.status_code == 422, response.text
    assert "valid_from" in response.json()["detail"]
    assert all(t["valid_from"] != "0001-01-01" for t in listed)


def test_a_target_put_through_the_api_can_end_and_a_later_put_replaces_it_whole(
    city_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API stores a target as the city file does (pisman/targets.py): with its end date, and a
    PUT without one makes it open-ended again; an end not after the start is a 422."""
    start = {"value": 2, "period_days": 14, "valid_from": "2031-01-01", "source": "SK 7"}
    with api_client(city_db, monkeypatch, role="admin") as (client, _):
        ended = client.put("/v1/targets/landfill_quota_t", json={**start, "valid_to": "2031-07-01"})
        backwards = client.put(
            "/v1/targets/landfill_quota_t", json={**start, "valid_to": "2031-01-01"}
        )
        listed_ended = client.get("/v1/targets").json()
        reopened = client.put("/v1/targets/landfill_quota_t", json=start)
        listed_open = client.get("/v1/targets").json()
    assert ended.status_code == 200, ended.text
    assert ended.json()["valid_to"] == "2031-07-01" and ended.json()["period_days"] == 14
    assert backwards.status_code == 422 and "valid_to" in backwards.json()["detail"]
    mine = [t for t in listed_ended if t["valid_from"] == "2031-01-01"]
    assert [t["valid_to"] for t in mine] == ["2031-07-01"]
    assert reopened.status_code == 200 and reopened.json()["valid_to"] is None
    assert [t["valid_to"] for t in listed_open if t["valid_from"] == "2031-01-01"] == [None]


UNKNOWN_FIELDS = [
    ("PATCH", "/v1/sites/tpa-gate", {"name": "Gate", "owner": "someone"}, "owner"),
    ("PATCH", "/v1/sites/tpa-gate", {"actve": False}, "actve"),
    (
        "PUT",
        "/v1/targets/generation_t",
        {"value": 1, "source": "x", "period": "1 day"},
        "period",
    ),
    (
        "POST",
        "/v1/devices",
        {"device_id": "d-1", "site_id": "tpa-gate", "kind": "weighbridge", "password": "x"},
        "password",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), UNKNOWN_FIELDS, ids=[u[3] for u in UNKNOWN_FIELDS]
)
def test_unknown_field_in_an_admin_body_gets_422_naming_it_and_changes_nothing(
    city_db: str,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    body: dict[str, object],
    field: str,
) -> None:
    with api_client(city_db, monkeypatch, role="admin") as (client, _):
        before = client.get("/v1/sites/tpa-gate").json()
        response = client.request(method, path, json=body)
        after = client.get("/v1/sites/tpa-gate").json()
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert "Extra inputs are not permitted" in response.json()["detail"]
    assert before == after
