"""Dashboard login (Flask test client against a live API): every page and callback needs a session,
the cookie is HttpOnly/SameSite=Lax, wrong passwords and lockout are told in Bahasa Indonesia
first, logout ends the API session too, an expired session goes back to the login page."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from pisman import users
from pisman.settings import Settings, get_settings
from tests.support.api_seed import CITY, seed_city
from tests.support.api_server import running_api
from tests.test_dashboard_hostile_input import PASSWORD, log_in


@pytest.fixture(scope="module")
def world(module_db_url: str) -> Iterator[tuple[Any, str, str]]:
    """(create a dashboard app, the API URL, the database)."""
    from dashboard import client as api_client_module
    from dashboard.app import create_app

    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
        users.add_user(conn, username="vina", password=PASSWORD, role="viewer")
        users.add_user(conn, username="pandu", password=PASSWORD, role="planner")
        users.add_user(conn, username="lola", password=PASSWORD, role="viewer")
    settings = Settings(DATABASE_URL=module_db_url, PISMAN_CITY=CITY, MQTT_URL="mqtt://127.0.0.1:1")  # type: ignore[call-arg]
    with running_api(settings) as api_url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("API_URL", api_url)
        mp.setenv("PISMAN_CITY", CITY)

        def make(**env: str) -> Any:
            # The per-test clean environment (conftest) drops API_URL and PISMAN_*: set again.
            env = {"API_URL": api_url, "PISMAN_CITY": CITY, **env}
            for name, value in env.items():
                mp.setenv(name, value)
            get_settings.cache_clear()
            api_client_module.base_client.cache_clear()
            return create_app()

        yield make, api_url, module_db_url
        api_client_module.base_client.cache_clear()
        get_settings.cache_clear()


def test_without_a_session_pages_go_to_login_and_callbacks_get_401(world):
    make, _, _ = world
    client = make().server.test_client()
    page = client.get("/reports?month=2026-03")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=%2Freports%3Fmonth%3D2026-03")
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/_dash-dependencies").status_code == 401
    callback = client.post("/_dash-update-component", json={"output": "lang.data"})
    assert callback.status_code == 401 and "login" in callback.get_data(as_text=True)
    assert client.get("/assets/style.css").status_code == 200
    login = client.get("/login")
    text = login.get_data(as_text=True)
    assert login.status_code == 200 and "Nama pengguna" in text and "Kata sandi" in text
    assert 'lang="id"' in text and login.headers["Cache-Control"] == "no-store"
    english = client.get("/login?lang=en").get_data(as_text=True)
    assert "Username" in english and "Password" in english


def test_login_sets_an_httponly_samesite_cookie_and_opens_the_dashboard(world):
    make, _, _ = world
    client = make().server.test_client()
    answer = log_in(client, "pandu", PASSWORD)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "pisman_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert PASSWORD not in cookie
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/").status_code == 200


def test_cookie_is_secure_when_configured(world):
    make, _, _ = world
    client = make(DASHBOARD_COOKIE_SECURE="true").server.test_client()
    answer = log_in(client, "pandu", PASSWORD)
    assert "Secure" in answer.headers["Set-Cookie"]
    make(DASHBOARD_COOKIE_SECURE="false")


def test_wrong_password_unknown_user_and_lockout_are_told_bahasa_first(world):
    make, _, db = world
    client = make().server.test_client()
    wrong = log_in(client, "lola", "Wrong-Password-0")
    unknown = log_in(client, "nobody", "Wrong-Password-0")
    assert wrong.status_code == unknown.status_code == 401
    assert "Nama pengguna atau kata sandi salah" in wrong.get_data(as_text=True)
    assert 'value="lola"' in wrong.get_data(as_text=True)  # the name stays, never the password
    assert "Wrong-Password-0" not in wrong.get_data(as_text=True)
    for i in range(1, 4):
        log_in(client, "lola", f"Wrong-Password-{i}")
    locked = log_in(client, "lola", "Wrong-Password-5")
    right_but_locked = log_in(client, "lola", PASSWORD)
    assert locked.status_code == right_but_locked.status_code == 429
    assert "dikunci" in right_but_locked.get_data(as_text=True)
    assert "15 menit" in right_but_locked.get_data(as_text=True)
    with psycopg.connect(db) as conn:
        users.set_disabled(conn, username="lola", disabled=False)  # an admin clears it


def test_login_form_needs_its_csrf_token_and_next_stays_on_this_site(world):
    make, _, _ = world
    client = make().server.test_client()
    forged = client.post("/login", data={"username": "pandu", "password": PASSWORD})
    assert forged.status_code == 400 and client.get("/_dash-layout").status_code == 401
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={
            "csrf": csrf.group(1),
            "username": "pandu",
            "password": PASSWORD,
            "next": "//evil.example/x",
        },
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/"


def test_logout_ends_the_dashboard_and_the_api_session(world):
    make, api_url, _ = world
    client = make().server.test_client()
    log_in(client, "vina", PASSWORD)
    with client.session_transaction() as session:
        token = session["api_token"]
    assert (
        httpx.get(f"{api_url}/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    out = client.post("/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/login"
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/").status_code == 302
    after = httpx.get(f"{api_url}/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401


def test_an_expired_session_returns_to_login(world):
    make, _, db = world
    client = make().server.test_client()
    log_in(client, "vina", PASSWORD)
    with client.session_transaction() as session:
        token = session["api_token"]
        session["checked_at"] = 0  # due for its check with the API
    with psycopg.connect(db) as conn:
        conn.execute(
            "UPDATE user_session SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
            (hashlib.sha256(token.encode()).hexdigest(),),
        )
    page = client.get("/")
    assert page.status_code == 302 and "expired=1" in page.headers["Location"]
    assert "Sesi Anda berakhir" in client.get(page.headers["Location"]).get_data(as_text=True)
    assert client.get("/_dash-layout").status_code == 401


def test_a_viewers_export_is_refused_by_the_api(world):
    make, _, _ = world
    from dashboard.client import base_client

    app = make()
    client = app.server.test_client()
    log_in(client, "vina", PASSWORD)
    with client.session_transaction() as session:
        token = session["api_token"]
    from dashboard.client import ApiRefused

    with pytest.raises(ApiRefused) as refused:
        base_client().for_token(token).export(month="2026-03", fmt="xlsx")
    assert refused.value.status == 403
