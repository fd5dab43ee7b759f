"""User accounts and login sessions (core): roles, city limits, Argon2id passwords, lockout.

A person logs in with a username and password (`POST /v1/auth/login`, or the dashboard's login
page) and gets a session token; every request with that token acts with the user's role and
city limits, exactly as an API key does. Only an Argon2id hash of a password and a SHA-256 of a
session token are stored.

Lockout: LOCKOUT_AFTER failed logins in a row lock the account for LOCKOUT_MINUTES; a
successful login resets the count.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pisman.domain import Role

LOCKOUT_AFTER = 5
LOCKOUT_MINUTES = 15
SESSION_PREFIX = "ps"
MIN_PASSWORD_LENGTH = 10
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
# Refused whatever their length: the passwords tried first by anyone guessing.
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "1234567890",
        "12345678910",
        "0123456789",
        "qwertyuiop",
        "qwerty1234",
        "1q2w3e4r5t",
        "iloveyou12",
        "adminadmin",
        "administrator",
        "bandung123",
        "katasandi",
        "katasandi123",
        "rahasia123",
        "pisman1234",
        "kangpisman",
    }
)

_hasher = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile
_dummy_hash: str | None = None


class UserError(Exception):
    """A user request cannot be carried out; str() says why (a CLI exit status 2)."""


@dataclass(frozen=True, slots=True)
class User:
    """A stored account (never its password)."""

    username: str
    display_name: str
    role: Role
    cities: tuple[str, ...]  # empty: every city
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime | None
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionUser:
    """The user behind a valid session token."""

    username: str
    display_name: str
    role: Role
    cities: tuple[str, ...]  # empty: every city
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LoginRefused:
    """Why a login failed: 'invalid' (unknown user or wrong password), 'locked', 'disabled'."""

    reason: str
    retry_after_s: int = 0


def hash_password(password: str) -> str:
    """The stored form of a password (Argon2id, salted)."""
    return _hasher.hash(password)


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` is too weak, or None when it is acceptable."""
    if not password or not password.strip():
        return "the password is empty"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password is shorter than {MIN_PASSWORD_LENGTH} characters"
    if len(password) > 1024:
        return "the password is longer than 1024 characters"
    if password.lower() in COMMON_PASSWORDS:
        return "the password is a commonly used one"
    if username and username.lower() in password.lower():
        return "the password contains the username"
    if len(set(password)) < 4:
        return "the password has fewer than 4 different characters"
    return None


def hash_token(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_session(token: str) -> bool:
    """Whether `token` is shaped like a session token (`ps_<random>`)."""
    return token.startswith(SESSION_PREFIX + "_") and 20 <= len(token) <= 200


def _check_username(username: str) -> str:
    if not re.fullmatch(USERNAME_PATTERN, username or ""):
        raise UserError(
            f"username {username[:80]!r}: use 2-64 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return username


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserError(f"unknown role {role!r}; use viewer, planner or admin") from None


INSERT_USER = """
INSERT INTO app_user (username, display_name, role, password_hash) VALUES (%s, %s, %s, %s)
ON CONFLICT (username) DO NOTHING
"""


def add_user(
    conn: psycopg.Connection,
    *,
    username: str,
    password: str,
    role: str,
    cities: list[str] | tuple[str, ...] = (),
    display_name: str | None = None,
) -> User:
    """Create an account; UserError for a bad name, role, city, weak password or a duplicate."""
    username = _check_username(username)
    role_ = _check_role(role)
    problem = password_problem(password, username)
    if problem:
        raise UserError(f"password refused: {problem}")
    name = (display_name or username).strip()
    if not name or len(name) > 200:
        raise UserError("display name: give 1-200 characters")
    wanted = sorted(set(cities))
    for city_id in wanted:
        if conn.execute("SELECT 1 FROM city WHERE city_id = %s", (city_id,)).fetchone() is None:
            raise UserError(f"no city {city_id[:80]!r}; load the city first (`pisman city load`)")
    with conn.transaction():
        if (
            conn.execute(
                INSERT_USER, (username, name, role_.value, hash_password(password))
            ).rowcount
            == 0
        ):
            raise UserError(f"user {username!r} already exists (see `pisman users list`)")
        for city_id in wanted:
            conn.execute(
                "INSERT INTO app_user_city (username, city_id) VALUES (%s, %s)", (username, city_id)
            )
    found = get_user(conn, username)
    assert found is not None
    return found


LIST_USERS = """
SELECT u.username, u.display_name, u.role,
       coalesce(array_agg(c.city_id ORDER BY c.city_id) FILTER (WHERE c.city_id IS NOT NULL), '{}'),
       u.disabled_at IS NOT NULL, u.failed_attempts,
       CASE WHEN u.locked_until > now() THEN u.locked_until END, u.created_at, u.last_login_at
FROM app_user u LEFT JOIN app_user_city c USING (username)
{where}
GROUP BY u.username ORDER BY u.username
"""


def _user(row: tuple[Any, ...]) -> User:
    return User(row[0], row[1], Role(row[2]), tuple(row[3]), *row[4:])


def list_users(conn: psycopg.Connection) -> list[User]:
    """Every account, disabled ones included."""
    return [_user(r) for r in conn.execute(LIST_USERS.replace("{where}", "")).fetchall()]


def get_user(conn: psycopg.Connection, username: str) -> User | None:
    """One account, or None."""
    row = conn.execute(
        LIST_USERS.replace("{where}", "WHERE u.username = %s"), (username,)
    ).fetchone()
    return _user(row) if row else None


def count_admins(conn: psycopg.Connection) -> int:
    """Enabled admin accounts."""
    row = conn.execute(
        "SELECT count(*) FROM app_user WHERE role = 'admin' AND disabled_at IS NULL"
    ).fetchone()
    return int(row[0]) if row else 0


def set_disabled(conn: psycopg.Connection, *, username: str, disabled: bool) -> User:
    """Disable an account (its sessions end at once) or enable it again (lockout cleared)."""
    with conn.transaction():
        if disabled:
            done = conn.execute(
                "UPDATE app_user SET disabled_at = coalesce(disabled_at, now()) WHERE username = %s",
                (username,),
            ).rowcount
            conn.execute(
                "UPDATE user_session SET revoked_at = now() WHERE username = %s"
                " AND revoked_at IS NULL",
                (username,),
            )
        else:
            done = conn.execute(
                "UPDATE app_user SET disabled_at = NULL, failed_attempts = 0, locked_until = NULL"
                " WHERE username = %s",
                (username,),
            ).rowcount
    if done == 0:
        raise UserError(f"no user {username[:80]!r} (see `pisman users list`)")
    found = get_user(conn, username)
    assert found is not None
    return found


def set_password(conn: psycopg.Connection, *, username: str, password: str) -> None:
    """Give an account a new password (its sessions end)."""
    problem = password_problem(password, username)
    if problem:
        raise UserError(f"password refused: {problem}")
    with conn.transaction():
        done = conn.execute(
            "UPDATE app_user SET password_hash = %s, failed_attempts = 0, locked_until = NULL"
            " WHERE username = %s",
            (hash_password(password), username),
        ).rowcount
        conn.execute(
            "UPDATE user_session SET revoked_at = now() WHERE username = %s AND revoked_at IS NULL",
            (username,),
        )
    if done == 0:
        raise UserError(f"no user {username[:80]!r} (see `pisman users list`)")


# ---- login and sessions (async: the API) --------------------------------------------------

FIND_LOGIN = """
SELECT password_hash, disabled_at IS NOT NULL,
       CASE WHEN locked_until > now()
            THEN ceil(extract(epoch FROM locked_until - now()))::int END
FROM app_user WHERE username = %s
"""
# A lock whose window has passed starts the count again at this failure.
RECORD_FAILURE = """
UPDATE app_user u SET
  failed_attempts = f.n,
  locked_until = CASE WHEN f.n >= %s THEN now() + make_interval(mins => %s) END
FROM (SELECT CASE WHEN locked_until <= now() THEN 1 ELSE failed_attempts + 1 END AS n
      FROM app_user WHERE username = %s) AS f
WHERE u.username = %s
RETURNING CASE WHEN u.locked_until > now()
               THEN ceil(extract(epoch FROM u.locked_until - now()))::int END
"""
RECORD_SUCCESS = """
UPDATE app_user SET failed_attempts = 0, locked_until = NULL, last_login_at = now()
WHERE username = %s
"""
INSERT_SESSION = """
INSERT INTO user_session (token_hash, username, expires_at)
VALUES (%s, %s, now() + make_interval(secs => %s))
"""


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


async def login(
    conn: psycopg.AsyncConnection, username: str, password: str, *, session_s: int
) -> str | LoginRefused:
    """A new session token for a good username and password, else why not.

    An unknown user costs the same Argon2 verification as a wrong password (against a dummy
    hash) and gets the same answer. A locked account is refused before its password is checked.
    """
    row = None
    if re.fullmatch(USERNAME_PATTERN, username) and len(password) <= 1024:
        row = await (await conn.execute(FIND_LOGIN, (username,))).fetchone()
    if row is not None and row[2] is not None:
        await conn.commit()
        return LoginRefused("locked", int(row[2]))
    ok = await asyncio.to_thread(_verify, row[0] if row else _dummy(), password)
    if row is None:
        await conn.commit()
        return LoginRefused("invalid")
    if not ok:
        cur = await conn.execute(
            RECORD_FAILURE, (LOCKOUT_AFTER, LOCKOUT_MINUTES, username, username)
        )
        locked = await cur.fetchone()
        await conn.commit()
        if locked is not None and locked[0] is not None:
            return LoginRefused("locked", int(locked[0]))
        return LoginRefused("invalid")
    if row[1]:
        await conn.commit()
        return LoginRefused("disabled")
    token = f"{SESSION_PREFIX}_{secrets.token_urlsafe(32)}"
    await conn.execute(RECORD_SUCCESS, (username,))
    await conn.execute(INSERT_SESSION, (hash_token(token), username, session_s))
    await conn.commit()
    return token


FIND_SESSION = """
SELECT u.username, u.display_name, u.role,
       coalesce((SELECT array_agg(c.city_id ORDER BY c.city_id) FROM app_user_city c
                 WHERE c.username = u.username), '{}'),
       s.expires_at, s.last_seen_at < now() - interval '1 minute'
FROM user_session s JOIN app_user u USING (username)
WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now()
  AND u.disabled_at IS NULL
"""
# Sliding expiry, at most once a minute; a concurrent request touching it is as good: skip.
TOUCH_SESSION = """
UPDATE user_session SET last_seen_at = now(), expires_at = now() + make_interval(secs => %s)
WHERE token_hash = (SELECT token_hash FROM user_session WHERE token_hash = %s
                    FOR UPDATE SKIP LOCKED)
RETURNING expires_at
"""


async def verify_session(
    conn: psycopg.AsyncConnection, token: str, *, session_s: int
) -> SessionUser | None:
    """The user of a live session token, or None; slides its expiry at most once a minute."""
    if not looks_like_session(token):
        return None
    digest = hash_token(token)
    row = await (await conn.execute(FIND_SESSION, (digest,))).fetchone()
    if row is None:
        return None
    expires_at: datetime = row[4]
    if row[5]:
        touched = await (await conn.execute(TOUCH_SESSION, (session_s, digest))).fetchone()
        await conn.commit()  # release the row lock now, as for API keys
        if touched is not None:
            expires_at = touched[0]
    return SessionUser(row[0], row[1], Role(row[2]), tuple(row[3]), expires_at)


async def logout(conn: psycopg.AsyncConnection, token: str) -> bool:
    """End a session; whether it was live."""
    cur = await conn.execute(
        "UPDATE user_session SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL",
        (hash_token(token),),
    )
    await conn.commit()
    return cur.rowcount > 0


def lockout_window() -> timedelta:
    """How long an account stays locked."""
    return timedelta(minutes=LOCKOUT_MINUTES)


def ensure_secret_file(path: Path) -> str:
    """The secret kept in `path`, created 0600 with 48 random bytes when missing.

    Created exclusively: processes starting together (several dashboards) all end up with the
    one secret the first of them wrote.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the writer may not have finished its one line yet
            text = path.read_text(encoding="utf-8").strip()
            if len(text) >= 32:
                return text
            time.sleep(0.02)
        raise UserError(f"{path} holds no usable secret (32+ characters); remove it") from None
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret
