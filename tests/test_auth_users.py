"""User accounts (core): Argon2id storage, weak passwords refused, city limits, `pisman users`."""

from __future__ import annotations

import psycopg
import pytest

from pisman import users
from tests.support.api_seed import CITY, seed_city
from tests.support.cli import run_pisman

GOOD = "Sampah-Bandung-2026"


@pytest.fixture
def city_db(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    return db_url


def test_password_is_stored_only_as_argon2id(city_db):
    with psycopg.connect(city_db) as conn:
        user = users.add_user(conn, username="sari", password=GOOD, role="viewer", cities=[CITY])
        stored = conn.execute(
            "SELECT password_hash FROM app_user WHERE username = 'sari'"
        ).fetchone()
        everything = conn.execute("SELECT string_agg(t::text, ' ') FROM app_user t").fetchone()
    assert user.role.value == "viewer" and user.cities == (CITY,) and not user.disabled
    assert stored is not None and stored[0].startswith("$argon2id$")
    assert everything is not None and GOOD not in everything[0]


@pytest.mark.parametrize(
    "password",
    ["", "          ", "short1!", "password123", "aaaaaaaaaaaa", "xx-sari-2026-xx", "x" * 1025],
)
def test_weak_passwords_are_refused(city_db, password):
    with psycopg.connect(city_db) as conn, pytest.raises(users.UserError, match="password"):
        users.add_user(conn, username="sari", password=password, role="viewer")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "Sari!"}, "username"),
        ({"username": "a"}, "username"),
        ({"role": "root"}, "unknown role"),
        ({"cities": ["atlantis"]}, "no city"),
    ],
)
def test_bad_name_role_or_city_is_refused(city_db, kwargs, message):
    args = {"username": "sari", "password": GOOD, "role": "viewer", **kwargs}
    with psycopg.connect(city_db) as conn, pytest.raises(users.UserError, match=message):
        users.add_user(conn, **args)
        # nothing half-made
    with psycopg.connect(city_db) as conn:
        assert users.list_users(conn) == []


def test_duplicate_user_is_refused(city_db):
    with psycopg.connect(city_db) as conn:
        users.add_user(conn, username="sari", password=GOOD, role="viewer")
        with pytest.raises(users.UserError, match="already exists"):
            users.add_user(conn, username="sari", password=GOOD + "x", role="admin")
        assert users.get_user(conn, "sari").role.value == "viewer"  # type: ignore[union-attr]


def test_cli_add_list_disable_enable(city_db):
    env = {"DATABASE_URL": city_db}
    add = run_pisman(
        "users",
        "add",
        "budi",
        "--role",
        "planner",
        "--city",
        CITY,
        "--password-stdin",
        env=env,
        input=GOOD + "\n",
    )
    assert add.returncode == 0, add.stderr
    assert "budi" in add.stdout and GOOD not in add.stdout + add.stderr
    listed = run_pisman("users", "list", env=env)
    assert listed.returncode == 0 and "budi" in listed.stdout and "planner" in listed.stdout
    assert CITY in listed.stdout and "active" in listed.stdout
    assert run_pisman("users", "disable", "budi", env=env).returncode == 0
    assert "disabled" in run_pisman("users", "list", env=env).stdout
    assert run_pisman("users", "enable", "budi", env=env).returncode == 0
    missing = run_pisman("users", "disable", "nobody", env=env)
    assert missing.returncode == 2 and "no user" in missing.stderr


@pytest.mark.parametrize("password", ["", "12345", "password123"])
def test_cli_refuses_weak_or_empty_password_with_exit_2(city_db, password):
    env = {"DATABASE_URL": city_db}
    result = run_pisman(
        "users",
        "add",
        "budi",
        "--role",
        "viewer",
        "--password-stdin",
        env=env,
        input=password + "\n",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "password refused" in result.stderr and "Traceback" not in result.stderr
    with psycopg.connect(city_db) as conn:
        assert users.get_user(conn, "budi") is None


def test_cli_without_terminal_or_stdin_flag_asks_for_password_stdin(city_db):
    result = run_pisman(
        "users", "add", "budi", "--role", "viewer", env={"DATABASE_URL": city_db}, input=""
    )
    assert result.returncode == 2 and "--password-stdin" in result.stderr


def test_cli_bad_role_is_a_usage_error(city_db):
    result = run_pisman(
        "users",
        "add",
        "budi",
        "--role",
        "root",
        "--password-stdin",
        env={"DATABASE_URL": city_db},
        input=GOOD + "\n",
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr
