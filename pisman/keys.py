"""API keys (stored credentials, core): created once in plain text, stored as SHA-256, verified per request with a role."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

from pisman.domain import Role

KEY_PREFIX = "pk"
ROLE_RANK = {Role.VIEWER: 0, Role.PLANNER: 1, Role.ADMIN: 2}


class ApiKeyError(Exception):
    """A key request cannot be carried out; str() says why."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key (never the secret)."""

    key_id: str
    name: str
    role: Role
    city_id: str | None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows(self, role: Role) -> bool:
        """Whether this key's role includes `role`."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def hash_secret(plain_key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(plain_key.encode("utf-8")).hexdigest()


def split_key(plain_key: str) -> str | None:
    """The key_id part of `pk_<key_id>_<secret>`, or None when it is not shaped like a key."""
    parts = plain_key.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8 or not parts[2]:
        return None
    return parts[1]


INSERT_KEY = """
INSERT INTO api_key (key_id, city_id, name, role, secret_hash) VALUES (%s, %s, %s, %s, %s)
"""


def create_key(
    conn: psycopg.Connection, *, role: str, name: str, city_id: str | None = None
) -> str:
    """Store a new key and return it in plain text (the only time it is visible)."""
    try:
        role = Role(role)
    except ValueError:
        raise ApiKeyError(f"unknown role {role!r}; use viewer, planner or admin") from None
    if (
        city_id is not None
        and conn.execute("SELECT 1 FROM city WHERE city_id = %s", (city_id,)).fetchone() is None
    ):
        raise ApiKeyError(f"no city {city_id!r}; load the city first")
    key_id = secrets.token_hex(4)
    plain = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24).replace('_', 'x')}"
    conn.execute(INSERT_KEY, (key_id, city_id, name, role.value, hash_secret(plain)))
    return plain


LIST_KEYS = """
SELECT key_id, name, role, city_id, created_at, last_used_at, revoked_at
FROM api_key ORDER BY created_at, key_id
"""


def list_keys(conn: psycopg.Connection) -> list[ApiKey]:
    """Every key, revoked ones included."""
    return [
        ApiKey(r[0], r[1], Role(r[2]), r[3], r[4], r[5], r[6])
        for r in conn.execute(LIST_KEYS).fetchall()
    ]


REVOKE_KEY = "UPDATE api_key SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL"


def revoke_key(conn: psycopg.Connection, *, key_id: str) -> None:
    """Revoke a key by its id; raises ApiKeyError when there is no such active key."""
    if conn.execute(REVOKE_KEY, (key_id,)).rowcount == 0:
        raise ApiKeyError(f"no active key {key_id!r} (see `pisman keys list`)")


FIND_KEY = """
SELECT key_id, name, role, city_id, secret_hash, last_used_at < now() - interval '1 minute'
FROM api_key WHERE key_id = %s AND revoked_at IS NULL
"""
# Another request of the same key touching it right now is as good: skip, never wait for it.
TOUCH_KEY = """
UPDATE api_key SET last_used_at = now()
WHERE key_id = (SELECT key_id FROM api_key WHERE key_id = %s FOR UPDATE SKIP LOCKED)
"""


async def verify(conn: psycopg.AsyncConnection, plain_key: str) -> ApiKey | None:
    """The active key matching `plain_key`, or None; records use at most once a minute."""
    key_id = split_key(plain_key)
    if key_id is None:
        return None
    row = await (await conn.execute(FIND_KEY, (key_id,))).fetchone()
    if row is None or not hmac.compare_digest(row[4], hash_secret(plain_key)):
        return None
    if row[5] is None or row[5]:
        await conn.execute(TOUCH_KEY, (key_id,))
        # Release the row lock now: held to the end of a long request, it would stall every
        # other request of this key behind it.
        await conn.commit()
    return ApiKey(row[0], row[1], Role(row[2]), row[3])
