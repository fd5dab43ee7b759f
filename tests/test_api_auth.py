"""API keys: hashed storage, 401 without or with a bad key, 403 for a role or city too narrow."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from pisman import keys
from tests.support.api_seed import api_client, seed_city


@pytest.fixture(scope="module")
def city_db(module_db_url: str) -> str:
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
    return module_db_url


def test_key_is_stored_only_as_sha256(city_db):
    with psycopg.connect(city_db) as conn:
        plain = keys.create_key(conn, role="viewer", name="hash-check")
        stored = conn.execute(
            "SELECT secret_hash FROM api_key WHERE key_id = %s", (keys.split_key(plain),)
        ).fetchone()
        everything = conn.execute("SELECT string_agg(t::text, ' ') FROM api_key t").fetchone()
    assert stored is not None and stored[0] == hashlib.sha256(plain.encode()).hexdigest()
    assert everything is not None and plain not in everything[0]


def test_requests_without_or_with_unknown_key_get_401(city_db, monkeypatch):
    with api_client(city_db, monkeypatch, role="viewer") as (client, key):
        no_key = client.get("/v1/meta", headers={"X-API-Key": ""})
        wrong = client.get("/v1/meta", headers={"X-API-Key": key[:-2] + "zz"})
        garbage = client.get("/v1/meta", headers={"X-API-Key": "hello"})
        bearer = client.get("/v1/meta", headers={"X-API-Key": "", "Authorization": f"Bearer {key}"})
        health = client.get("/healthz", headers={"X-API-Key": ""})
    assert no_key.status_code == 401 and "X-API-Key" in no_key.json()["detail"]
    assert wrong.status_code == 401 and garbage.status_code == 401
    assert bearer.status_code == 200
    assert health.status_code == 200


def test_viewer_cannot_export_or_administer_and_planner_cannot_administer(city_db, monkeypatch):
    with api_client(city_db, monkeypatch, role="viewer") as (client, _):
        export = client.get("/v1/exports/monthly.csv", params={"month": "2026-03"})
        report = client.get("/v1/reports/national", params={"month": "2026-03"})
        tonnage = client.get("/v1/tonnage", params={"from": "2026-03-01", "to": "2026-03-02"})
    assert export.status_code == 403 and "planner" in export.json()["detail"]
    assert report.status_code == 403
    assert tonnage.status_code == 200
    with api_client(city_db, monkeypatch, role="planner") as (client, _):
        export = client.get("/v1/exports/monthly.csv", params={"month": "2026-03"})
        admin = client.get("/v1/quarantine")
        provision = client.post(
            "/v1/devices", json={"device_id": "x-1", "site_id": "tpa-gate", "kind": "weighbridge"}
        )
    assert export.status_code == 200
    assert admin.status_code == 403 and "admin" in admin.json()["detail"]
    assert provision.status_code == 403


def test_revoked_key_gets_401(city_db, monkeypatch):
    with api_client(city_db, monkeypatch, role="admin") as (client, key):
        assert client.get("/v1/meta").status_code == 200
        with psycopg.connect(city_db) as conn:
            keys.revoke_key(conn, key_id=str(keys.split_key(key)))
        assert client.get("/v1/meta").status_code == 401


def test_key_limited_to_a_city_gets_403_for_another_city(city_db, monkeypatch):
    with psycopg.connect(city_db) as conn:
        conn.execute(
            "INSERT INTO city (city_id, name) VALUES ('othertown', 'Othertown') ON CONFLICT DO NOTHING"
        )
        limited = keys.create_key(conn, role="viewer", name="limited", city_id="othertown")
    with api_client(city_db, monkeypatch) as (client, _):
        r = client.get("/v1/meta", headers={"X-API-Key": limited})
        ok = client.get("/v1/meta", params={"city": "othertown"}, headers={"X-API-Key": limited})
    assert r.status_code == 403 and "othertown" in r.json()["detail"]
    assert ok.status_code == 200
