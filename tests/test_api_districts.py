"""GET /v1/districts/boundaries against a real database (both backends): the outlines a city file
provides, an empty answer for a city without them (never a 500), ETag revalidation, city limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pisman import citydata, keys
from pisman.contract import DistrictBoundariesAnswer
from pisman.settings import PROJECT_ROOT
from tests.support.api_seed import CITY, api_client, seed_city

TESTVILLE = PROJECT_ROOT / "data" / "cities" / "testville.yaml"
PATH = "/v1/districts/boundaries"


@pytest.fixture(scope="module")
def world(module_db_url: str) -> str:
    """Testville loaded from its file (with outlines) and the seeded Apitown (without)."""
    with psycopg.connect(module_db_url) as conn:
        citydata.load_city(conn, citydata.read_city_file(TESTVILLE))
        seed_city(conn)
    return module_db_url


@pytest.fixture(scope="module")
def client(world: str) -> Iterator[Any]:
    """One API (lifespan on) for the module, with a viewer key."""
    with pytest.MonkeyPatch.context() as mp, api_client(world, mp, role="viewer") as (c, _key):
        yield c


def test_testville_outlines_are_served_one_multipolygon_per_district(client: Any) -> None:
    response = client.get(PATH, params={"city": "testville"})
    assert response.status_code == 200, response.text
    answer = DistrictBoundariesAnswer.model_validate_json(response.content)
    assert answer.city == "testville"
    assert answer.source is not None and "synthetic test geometry" in answer.source
    assert [d.district_id for d in answer.districts] == ["north", "south"]
    assert [d.name for d in answer.districts] == ["North", "South"]
    north = answer.districts[0]
    assert north.geometry.type == "MultiPolygon"
    assert north.geometry.coordinates[0][0][0] == [107.57, -6.925]
    assert north.bbox == [107.57, -6.925, 107.65, -6.865]
    assert answer.bbox == [107.57, -6.98, 107.655, -6.865]
    assert response.headers["Cache-Control"].startswith("private")


def test_city_without_outlines_gets_an_empty_answer_not_an_error(client: Any) -> None:
    response = client.get(PATH, params={"city": CITY})
    assert response.status_code == 200, response.text
    assert response.json() == {"city": CITY, "source": None, "bbox": None, "districts": []}


def test_unchanged_outlines_revalidate_with_304_and_no_body(client: Any) -> None:
    first = client.get(PATH, params={"city": "testville"})
    etag = first.headers["ETag"]
    again = client.get(PATH, params={"city": "testville"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    other = client.get(PATH, params={"city": "testville"}, headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.json()["districts"]
    empty = client.get(PATH, params={"city": CITY})
    assert empty.headers["ETag"] != etag


def test_bad_or_unknown_city_and_missing_key_are_4xx_with_a_message(client: Any) -> None:
    bad = client.get(PATH, params={"city": "../etc"})
    assert bad.status_code == 422 and bad.json()["detail"]
    unknown = client.get(PATH, params={"city": "atlantis"})
    assert unknown.status_code == 404 and "atlantis" in unknown.json()["detail"]
    anonymous = client.get(PATH, params={"city": "testville"}, headers={"X-API-Key": ""})
    assert anonymous.status_code == 401


def test_key_limited_to_another_city_cannot_read_its_outlines(world: str, client: Any) -> None:
    with psycopg.connect(world) as conn:
        limited = keys.create_key(conn, role="viewer", name="apitown-only", city_id=CITY)
    answer = client.get(PATH, params={"city": "testville"}, headers={"X-API-Key": limited})
    assert answer.status_code == 403 and answer.json()["detail"]
