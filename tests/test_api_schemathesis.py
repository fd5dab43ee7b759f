"""Schemathesis over the OpenAPI document: no input makes the API answer with a server error, and
every answer (success or error) has a status, media type and body the document declares."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from pisman import keys
from pisman.settings import Settings
from tests.support.api_seed import CITY, insert_weighings, random_weighings, seed_city
from tests.support.broker import Mosquitto, free_port


class _Server:
    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key


@pytest.fixture(scope="module")
def api_server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    """The API in a real uvicorn server in a thread, over a seeded database and a private broker."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"), port=free_port())
    broker.start()
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
        insert_weighings(
            conn,
            random_weighings(
                random.Random(3), datetime.fromisoformat("2026-03-01T00:00:00+00:00"), 24, 3
            ),
        )
        key = keys.create_key(conn, role="admin", name="schemathesis")
    port = free_port()
    app = create_app(
        Settings(
            DATABASE_URL=module_db_url, PISMAN_CITY=CITY, MQTT_URL=f"mqtt://127.0.0.1:{broker.port}"
        )
    )  # type: ignore[call-arg]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield _Server(url, key)
    server.should_exit = True
    thread.join(timeout=10)
    broker.stop()


@pytest.fixture(scope="module")
def api_schema(api_server: _Server) -> Any:
    return schemathesis.openapi.from_url(api_server.url + "/openapi.json")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Every operation of the document (built without a database), one test each.
OPERATIONS = [
    (method.upper(), path)
    for path, item in create_app(Settings()).openapi()["paths"].items()  # type: ignore[call-arg]
    for method in item
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_causes_a_server_error_or_an_answer_outside_the_schema(
    api_schema: Any, api_server: _Server, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    failures: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(
            base_url=api_server.url, headers={"X-API-Key": api_server.key}, timeout=30
        )
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # schemathesis raises a group of the failed checks
            failures.append(
                f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}: "
                f"{response.status_code} {response.text[:200]} -- {str(exc)[:400]}"
            )

    check()
    assert not failures, failures[:3]
