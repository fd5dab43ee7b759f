"""A database restart under a running API: 503 with Retry-After while it is down, 200 right after."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import httpx
import psycopg
import pytest

from pisman import db, keys
from pisman.settings import PROJECT_ROOT, Settings
from tests.support.api_seed import CITY, insert_weighings, random_weighings, seed_city
from tests.support.api_server import running_api
from tests.support.databases import Backend
from tests.support.pgcluster import PG_BIN, PrivatePostgres

POOL_TIMEOUT_S = 2.0
# Under a loaded machine a 503 may take a little longer than the pool timeout, never much.
PROMPT_S = POOL_TIMEOUT_S + 6
TONNAGE = "/v1/tonnage?from=2026-03-01&to=2026-03-08&bucket=day&group_by=category,district"
READS = ("/v1/meta", TONNAGE, "/v1/sites", "/v1/progress?date=2026-03-05", "/v1/alerts")


@dataclass(frozen=True, slots=True)
class OutageWorld:
    pg: PrivatePostgres
    settings: Settings
    key: str


@pytest.fixture(scope="module")
def private_world(backend: Backend) -> Iterator[OutageWorld]:
    """A private PostgreSQL (ours to stop; preloading TimescaleDB on that backend) with the
    schema, a seeded city, a week of weighings: made once per module (initdb and the
    migrations are most of a test's time), restarted by each test."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    pg = PrivatePostgres(timescaledb=backend.is_timescaledb)
    try:
        pg.init()
        db.ensure_database(pg.url)
        db.migrate(pg.url, PROJECT_ROOT / "sql")
        with psycopg.connect(pg.url) as conn:
            seed_city(conn)
            insert_weighings(
                conn,
                random_weighings(
                    random.Random(5), datetime.fromisoformat("2026-03-01T00:00:00+07:00"), 7, 4
                ),
            )
            key = keys.create_key(conn, role="admin", name="outage")
        settings = Settings(
            DATABASE_URL=pg.url,
            PISMAN_CITY=CITY,
            MQTT_URL="mqtt://127.0.0.1:1",
            API_POOL_TIMEOUT_S=POOL_TIMEOUT_S,
            # _fill_pools sends heavy reads at once; on a loaded machine they would wait out
            # the default queue and get 429 (the bound is test_api_limits.py's subject).
            API_HEAVY_QUEUE_S=60,
        )  # type: ignore[call-arg]
        yield OutageWorld(pg, settings, key)
    finally:
        pg.destroy()


@pytest.fixture
def outage_world(private_world: OutageWorld) -> OutageWorld:
    """The module's private server, running when the test starts (whatever the last one did)."""
    if not private_world.pg.running():
        private_world.pg.start()
    return private_world


def _get(base: str, key: str, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(base + path, headers={"X-API-Key": key}, timeout=60)
    return response, time.monotonic() - started


def _fill_pools(base: str, key: str) -> None:
    """Concurrent requests, so both pools hold several connections that the restart will kill."""
    with ThreadPoolExecutor(8) as workers:
        results = list(workers.map(lambda p: _get(base, key, p)[0], READS * 3))
    assert [r.status_code for r in results] == [200] * len(results), [
        r.text[:200] for r in results if r.status_code != 200
    ]


def test_first_request_after_a_database_restart_is_answered_not_failed(
    outage_world: OutageWorld,
) -> None:
    w = outage_world
    with running_api(w.settings) as base:
        _fill_pools(base, w.key)
        w.pg.stop("immediate")  # every pooled connection dies with the server
        w.pg.start()
        for path in READS:
            response, elapsed = _get(base, w.key, path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            assert elapsed < PROMPT_S, (path, elapsed)


def test_database_outage_answers_503_with_retry_after_promptly_and_200_once_it_is_back(
    outage_world: OutageWorld,
) -> None:
    w = outage_world
    with running_api(w.settings) as base:
        _fill_pools(base, w.key)
        w.pg.stop("immediate")
        try:
            for path in (*READS, "/readyz"):
                response, elapsed = _get(base, w.key, path)
                assert response.status_code == 503, (path, response.status_code, response.text)
                assert elapsed < PROMPT_S, (path, elapsed)
                if path != "/readyz":
                    assert int(response.headers["Retry-After"]) >= 1
                    assert "database unavailable" in response.json()["detail"]
            healthz, elapsed = _get(base, w.key, "/healthz")
            assert healthz.status_code == 200 and elapsed < 1.0, elapsed
        finally:
            w.pg.start()
        for path in READS:
            response, elapsed = _get(base, w.key, path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            assert elapsed < PROMPT_S, (path, elapsed)
