"""Login sessions in the API: /v1/auth/login|logout|me, lockout, expiry, roles and city limits."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from pisman import users
from tests.support.api_seed import CITY, api_client, seed_city

PASSWORD = "Sampah-Bandung-2026"


def seed_database(url: str) -> None:
    """The city and its three users (three Argon2id hashes): once per module (seeded_db_url)."""
    with psycopg.connect(url) as conn:
        seed_city(conn)
        conn.execute("INSERT INTO city (city_id, name) VALUES ('othertown', 'Othertown')")
        users.add_user(conn, username="vina", password=PASSWORD, role="viewer", cities=[CITY])
        users.add_user(conn, username="pandu", password=PASSWORD, role="planner")
        users.add_user(
            conn, username="oscar", password=PASSWORD, role="viewer", cities=["othertown"]
        )


@pytest.fixture
def city_db(seeded_db_url: str) -> str:
    """A fresh copy of the seeded database for each test (sessions and lockouts are its own)."""
    return seeded_db_url


def login(client, username: str, password: str = PASSWORD):
    return client.post(
        "/v1/auth/login",
        json={"username": username, "password": password},
        headers={"X-API-Key": ""},
    )


def bearer(token: str) -> dict[str, str]:
    return {"X-API-Key": "", "Authorization": f"Bearer {token}"}


def test_login_gives_a_token_stored_only_as_sha256_acting_with_the_users_role(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, _):
        r = login(client, "vina")
        assert r.status_code == 200, r.text
        body = r.json()
        token = body["token"]
        assert body["user"]["role"] == "viewer" and body["user"]["cities"] == [CITY]
        assert body["user"]["kind"] == "session" and body["user"]["expires_at"]
        me = client.get("/v1/auth/me", headers=bearer(token))
        meta = client.get("/v1/meta", headers=bearer(token))
        export = client.get(
            "/v1/exports/monthly.csv", params={"month": "2026-03"}, headers=bearer(token)
        )
        report = client.get(
            "/v1/reports/national", params={"month": "2026-03"}, headers=bearer(token)
        )
    assert me.status_code == 200 and me.json()["username"] == "vina"
    assert meta.status_code == 200
    assert export.status_code == 403 and "planner" in export.json()["detail"]
    assert "user vina" in export.json()["detail"]
    assert report.status_code == 403
    with psycopg.connect(city_db) as conn:
        stored = conn.execute("SELECT string_agg(t::text, ' ') FROM user_session t").fetchone()
        row = conn.execute(
            "SELECT last_login_at IS NOT NULL FROM app_user WHERE username = 'vina'"
        ).fetchone()
    assert stored is not None and token not in stored[0]
    assert hashlib.sha256(token.encode()).hexdigest() in stored[0]
    assert row == (True,)


def test_planner_session_can_export(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, _):
        token = login(client, "pandu").json()["token"]
        export = client.get(
            "/v1/exports/monthly.csv", params={"month": "2026-03"}, headers=bearer(token)
        )
        quarantine = client.get("/v1/quarantine", headers=bearer(token))
    assert export.status_code == 200
    assert quarantine.status_code == 403 and "admin" in quarantine.json()["detail"]


def test_wrong_password_and_unknown_user_get_the_same_answer_after_the_same_hash_check(
    city_db, monkeypatch
):
    checked: list[str] = []
    real = users._verify

    def counting(stored: str, password: str) -> bool:
        checked.append(stored[:9])
        return real(stored, password)

    monkeypatch.setattr(users, "_verify", counting)
    with api_client(city_db, monkeypatch) as (client, _):
        wrong = login(client, "vina", "Not-The-Password-1")
        unknown = login(client, "nobody-here", "Not-The-Password-1")
        hostile = login(client, "Robert'); DROP TABLE app_user;--", "x")
    assert wrong.status_code == unknown.status_code == hostile.status_code == 401
    assert wrong.json() == unknown.json() == hostile.json()
    assert wrong.json()["detail"] == "wrong username or password"
    # every path runs one Argon2id verification, the unknown user against a dummy hash
    assert checked == ["$argon2id"] * 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "vina"},
        {"username": "", "password": "x"},
        {"username": 1, "password": []},
        {"username": "vina", "password": "x" * 2000},
        {"username": "vina", "password": "p", "x": 1},
    ],
)
def test_malformed_login_bodies_get_422(city_db, monkeypatch, body):
    with api_client(city_db, monkeypatch) as (client, _):
        r = client.post("/v1/auth/login", json=body, headers={"X-API-Key": ""})
    assert r.status_code == 422 and r.json()["detail"]


def test_lockout_after_five_failures_then_unlock_after_the_window(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, _):
        answers = [login(client, "vina", f"Wrong-Password-{i}").status_code for i in range(5)]
        locked_right = login(client, "vina")
        assert answers == [401, 401, 401, 401, 429]
        assert locked_right.status_code == 429 and "locked" in locked_right.json()["detail"]
        assert 14 * 60 <= int(locked_right.headers["Retry-After"]) <= 15 * 60
        # another user is not affected
        assert login(client, "pandu").status_code == 200
        with psycopg.connect(city_db) as conn:  # the 15 minutes pass
            conn.execute(
                "UPDATE app_user SET locked_until = now() - interval '1 second'"
                " WHERE username = 'vina'"
            )
        after = login(client, "vina")
        assert after.status_code == 200
        # the count starts again: four new failures do not lock
        again = [login(client, "vina", f"Wrong-Password-{i}").status_code for i in range(4)]
        assert again == [401] * 4
        assert login(client, "vina").status_code == 200


def test_lock_that_expired_restarts_the_count_on_the_next_failure(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, _):
        for i in range(5):
            login(client, "vina", f"Wrong-Password-{i}")
        with psycopg.connect(city_db) as conn:
            conn.execute(
                "UPDATE app_user SET locked_until = now() - interval '1 second'"
                " WHERE username = 'vina'"
            )
        assert login(client, "vina", "Wrong-Password-x").status_code == 401
        assert login(client, "vina").status_code == 200


def test_disabled_user_cannot_log_in_and_its_sessions_end(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, _):
        token = login(client, "pandu").json()["token"]
        assert client.get("/v1/meta", headers=bearer(token)).status_code == 200
        with psycopg.connect(city_db) as conn:
            users.set_disabled(conn, username="pandu", disabled=True)
        assert client.get("/v1/meta", headers=bearer(token)).status_code == 401
        refused = login(client, "pandu")
        wrong = login(client, "pandu", "Wrong-Password-1")
        with psycopg.connect(city_db) as conn:
            users.set_disabled(conn, username="pandu", disabled=False)
        back = login(client, "pandu")
    assert refused.status_code == 403 and "disabled" in refused.json()["detail"]
    assert wrong.status_code == 401  # the disabled state is told only with the right password
    assert back.status_code == 200


def test_expired_and_logged_out_tokens_get_401(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, key):
        first = login(client, "vina").json()["token"]
        second = login(client, "vina").json()["token"]
        with psycopg.connect(city_db) as conn:
            conn.execute(
                "UPDATE user_session SET expires_at = now() - interval '1 second'"
                " WHERE token_hash = %s",
                (hashlib.sha256(first.encode()).hexdigest(),),
            )
        expired = client.get("/v1/meta", headers=bearer(first))
        out = client.post("/v1/auth/logout", headers=bearer(second))
        again = client.post("/v1/auth/logout", headers=bearer(second))
        after = client.get("/v1/meta", headers=bearer(second))
        forged = client.get("/v1/meta", headers=bearer("ps_" + "A" * 43))
        key_logout = client.post("/v1/auth/logout", headers={"X-API-Key": key})
        key_me = client.get("/v1/auth/me", headers={"X-API-Key": key})
    assert expired.status_code == 401 and "log in again" in expired.json()["detail"]
    assert out.status_code == 200 and out.json() == {"ended": True}
    assert again.status_code == 401
    assert after.status_code == 401 and forged.status_code == 401
    assert key_logout.status_code == 422
    assert key_me.status_code == 200 and key_me.json()["kind"] == "key"


def test_session_expiry_slides_forward_on_use(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, _):
        token = login(client, "vina").json()["token"]
        digest = hashlib.sha256(token.encode()).hexdigest()
        with psycopg.connect(city_db) as conn:
            conn.execute(
                "UPDATE user_session SET last_seen_at = now() - interval '2 hours',"
                " expires_at = now() + interval '10 minutes' WHERE token_hash = %s",
                (digest,),
            )
        assert client.get("/v1/meta", headers=bearer(token)).status_code == 200
        with psycopg.connect(city_db) as conn:
            left = conn.execute(
                "SELECT extract(epoch FROM expires_at - now()) FROM user_session"
                " WHERE token_hash = %s",
                (digest,),
            ).fetchone()
    assert left is not None and 11.9 * 3600 < float(left[0]) <= 12 * 3600


def test_city_limits_are_enforced_for_sessions(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, _):
        oscar = login(client, "oscar").json()["token"]
        vina = login(client, "vina").json()["token"]
        pandu = login(client, "pandu").json()["token"]
        oscar_default = client.get("/v1/meta", headers=bearer(oscar))
        oscar_own = client.get("/v1/meta", params={"city": "othertown"}, headers=bearer(oscar))
        vina_other = client.get("/v1/meta", params={"city": "othertown"}, headers=bearer(vina))
        pandu_other = client.get("/v1/meta", params={"city": "othertown"}, headers=bearer(pandu))
    assert oscar_default.status_code == 403 and "othertown" in oscar_default.json()["detail"]
    assert oscar_own.status_code == 200
    assert vina_other.status_code == 403
    assert pandu_other.status_code == 200  # no limits: every city


def test_user_with_several_cities_reads_each(city_db, monkeypatch):
    with psycopg.connect(city_db) as conn:
        users.add_user(
            conn, username="rina", password=PASSWORD, role="viewer", cities=[CITY, "othertown"]
        )
    with api_client(city_db, monkeypatch) as (client, _):
        token = login(client, "rina").json()["token"]
        statuses = [
            client.get("/v1/meta", params={"city": c}, headers=bearer(token)).status_code
            for c in (CITY, "othertown")
        ]
    assert statuses == [200, 200]


def test_login_is_rate_limited_per_address(city_db, monkeypatch):
    monkeypatch.setenv("API_RATE_LIMIT_PER_MIN", "3")
    with api_client(city_db, monkeypatch) as (client, _):
        codes = [login(client, "nobody", "Wrong-Password-1").status_code for _ in range(6)]
    assert codes[:3] == [401] * 3 and 429 in codes[3:]
