"""Load limits: per-key rate limit, a bound on heavy queries, a statement timeout, several workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from api.limits import RateLimiter
from pisman import keys
from pisman.settings import PROJECT_ROOT, Settings
from tests.support.api_seed import CITY, api_client, seed_city
from tests.support.api_server import running_api
from tests.support.broker import free_port
from tests.support.databases import lock_waiters

# Up to tomorrow: open days are always read from the database, never from the closed-day cache.
_TODAY = datetime.now(ZoneInfo("Asia/Jakarta")).date()
TONNAGE = f"/v1/tonnage?from={_TODAY - timedelta(days=7)}&to={_TODAY + timedelta(days=1)}"


@pytest.fixture(scope="module")
def city_db(module_db_url: str) -> str:
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
    return module_db_url


def _settings(db_url: str, **overrides: object) -> Settings:
    return Settings(
        DATABASE_URL=db_url, PISMAN_CITY=CITY, MQTT_URL="mqtt://127.0.0.1:1", **overrides
    )  # type: ignore[call-arg]


def _new_key(db_url: str, role: str = "viewer") -> str:
    with psycopg.connect(db_url) as conn:
        return keys.create_key(conn, role=role, name=f"limits-{role}")


def test_rate_limiter_admits_a_burst_then_one_request_per_refill_interval() -> None:
    limiter = RateLimiter(60)  # one a second, bursts of 60
    assert all(limiter.wait_s("k", now=100.0) == 0 for _ in range(60))
    assert limiter.wait_s("k", now=100.0) == pytest.approx(1.0)
    assert limiter.wait_s("k", now=100.5) == pytest.approx(0.5)
    assert limiter.wait_s("k", now=101.0) == 0
    assert limiter.wait_s("other", now=101.0) == 0
    assert RateLimiter(0).wait_s("k", now=0) == 0  # 0 turns the limit off


def test_rate_limiter_forgets_the_least_recent_callers_beyond_its_size() -> None:
    limiter = RateLimiter(1, max_callers=3)
    for caller in ("a", "b", "c", "d"):
        assert limiter.wait_s(caller, now=0) == 0
    assert limiter.wait_s("d", now=0) > 0  # still remembered
    assert limiter.wait_s("a", now=0) == 0  # forgotten, starts full again


def test_key_over_its_rate_limit_gets_429_with_retry_after_and_other_keys_go_on(
    city_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_RATE_LIMIT_PER_MIN", "5")
    other = _new_key(city_db)
    with api_client(city_db, monkeypatch, role="viewer") as (client, _key):
        statuses = [client.get("/v1/meta").status_code for _ in range(5)]
        refused = client.get("/v1/sites")
        other_key = client.get("/v1/meta", headers={"X-API-Key": other})
        health = [client.get(p).status_code for p in ("/healthz", "/metrics") for _ in range(10)]
    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "too many requests" in refused.json()["detail"]
    assert other_key.status_code == 200
    assert set(health) == {200}


def test_guessing_a_key_id_does_not_use_up_the_real_keys_requests(
    city_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_RATE_LIMIT_PER_MIN", "5")
    with api_client(city_db, monkeypatch, role="viewer") as (client, key):
        forged = key[:-4] + "zzzz"  # same key id, wrong secret
        attempts = [
            client.get("/v1/meta", headers={"X-API-Key": forged}).status_code for _ in range(8)
        ]
        real = client.get("/v1/meta")
    assert attempts[:5] == [401] * 5 and set(attempts[5:]) == {429}
    assert real.status_code == 200


@contextmanager
def rollups_locked(db_url: str) -> Iterator[None]:
    """Hold an exclusive lock on every tonnage source (the site-less grain tables of sql/025 and
    the per-site rollups): every tonnage query waits in the database, whichever it reads."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "LOCK TABLE weighing_daily, tonnage_daily_city, tonnage_daily_district,"
            " tonnage_monthly_site IN ACCESS EXCLUSIVE MODE"
        )
        try:
            yield
        finally:
            conn.rollback()


def _wait_until(condition: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _timed_get(url: str, key: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(url, headers={"X-API-Key": key}, timeout=60)
    return response, time.monotonic() - started


def test_heavy_queries_beyond_the_bound_get_429_while_light_requests_answer_at_once(
    city_db: str,
) -> None:
    key = _new_key(city_db)
    settings = _settings(city_db, API_MAX_HEAVY_QUERIES=2, API_HEAVY_QUEUE_S=0.5)
    with running_api(settings) as base:
        stuck: list[httpx.Response] = []
        with rollups_locked(city_db):
            threads = [
                threading.Thread(target=lambda: stuck.append(_timed_get(base + TONNAGE, key)[0]))
                for _ in range(2)
            ]
            for t in threads:
                t.start()
            _wait_until(lambda: lock_waiters(city_db) >= 2)
            refused, refused_s = _timed_get(base + TONNAGE, key)
            light = {p: _timed_get(base + p, key) for p in ("/healthz", "/v1/meta", "/v1/sites")}
        for t in threads:
            t.join(timeout=60)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "heavy queries" in refused.json()["detail"]
    assert 0.4 <= refused_s < 5
    for path, (response, seconds) in light.items():
        assert response.status_code == 200, (path, response.text)
        assert seconds < 2.0, (path, seconds)
    assert [r.status_code for r in stuck] == [200, 200]


def test_query_past_the_statement_timeout_answers_503_with_retry_after(city_db: str) -> None:
    key = _new_key(city_db)
    settings = _settings(city_db, API_STATEMENT_TIMEOUT_S=1)
    with running_api(settings) as base, rollups_locked(city_db):
        response, seconds = _timed_get(base + TONNAGE, key)
        meta, _ = _timed_get(base + "/v1/meta", key)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "query took longer than 1 s" in response.json()["detail"]
    assert seconds < 10
    assert meta.status_code == 200


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(c) for c in text)
    return found


def test_pisman_api_workers_option_serves_from_that_many_processes(city_db: str) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("API_", "PISMAN_"))},
        "DATABASE_URL": city_db,
        "PISMAN_CITY": CITY,
        "MQTT_URL": "mqtt://127.0.0.1:1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pisman", "api", "--workers", "2", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        key = _new_key(city_db)

        def workers_serving() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
            return ok and len(_children(proc.pid)) >= 2

        _wait_until(workers_serving, timeout_s=60)
        meta = httpx.get(f"http://127.0.0.1:{port}/v1/meta", headers={"X-API-Key": key}, timeout=30)
        assert meta.status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
