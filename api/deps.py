"""Dependencies shared by the routes: a pooled connection, the caller (an API key or a logged-in
user's session) with its role and city limits, the city."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import Depends, Header, HTTPException, Query, Request

from api.limits import retry_after
from api.queries.rows import fetch_one
from pisman import keys, users
from pisman.domain import CITY_ID_PATTERN, Role
from pisman.keys import ROLE_RANK
from pisman.settings import Settings


async def get_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """One pooled connection for the request (shared by its dependencies), from its lane's pool."""
    pool = getattr(request.state, "pool", None) or request.app.state.pool
    async with pool.connection() as conn:
        yield conn


# scope="function": the transaction ends (and a server lost meanwhile becomes a 503) before the
# response starts; with the default, a failure at that commit reset an already-started response.
Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn, scope="function")]


def _presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


async def rate_limit(request: Request) -> None:
    """429 with Retry-After when the caller has used up its requests per minute.

    The caller is the key as presented (its hash: guessing a key id cannot drain another key's
    bucket), or the client address when no key-shaped credential is sent. Checked before a
    connection or a heavy slot is taken, so a throttled caller costs nothing else.
    """
    plain = _presented_key(request.headers.get("x-api-key"), request.headers.get("authorization"))
    if plain is not None and (keys.split_key(plain) is not None or users.looks_like_session(plain)):
        caller = "key:" + keys.hash_secret(plain)
    else:
        caller = "addr:" + (request.client.host if request.client else "unknown")
    wait = request.app.state.rate_limiter.wait_s(caller)
    if wait > 0:
        limit = request.app.state.rate_limiter.per_min
        raise HTTPException(
            429,
            detail=(
                f"Terlalu banyak permintaan / too many requests: at most {limit} a minute per "
                f"API key; retry in {retry_after(wait)} s"
            ),
            headers={"Retry-After": retry_after(wait)},
        )


async def heavy_lane(request: Request) -> AsyncIterator[None]:
    """A slot among the process's few heavy requests (429 when none comes free in time)."""
    gate = request.app.state.heavy_gate
    if not await gate.acquire():
        raise HTTPException(
            429,
            detail=(
                f"Server sedang sibuk / busy: {gate.limit} heavy queries (tonnage, progress, "
                "reports, exports) are already running; retry shortly"
            ),
            headers={"Retry-After": retry_after(max(1.0, gate.queue_s))},
        )
    try:
        yield
    finally:
        gate.release()


async def light_lane(request: Request) -> None:
    """Use the small pool that heavy requests never touch (labels, readiness)."""
    request.state.pool = request.app.state.light_pool


HeavyLane = Depends(heavy_lane)
LightLane = Depends(light_lane)
RateLimited = Depends(rate_limit)


def app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: an API key or a logged-in user, with the role and city limits it carries."""

    label: str  # "key 1a2b3c4d" or "user sari": for messages and logs, never a secret
    role: Role
    cities: tuple[str, ...]  # empty: every city of the deployment
    username: str | None = None  # set for a user's session
    display_name: str | None = None
    expires_at: datetime | None = None  # a session's current end

    def allows(self, role: Role) -> bool:
        """Whether this caller's role includes `role`."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def allows_city(self, city_id: str) -> bool:
        """Whether this caller may read `city_id`."""
        return not self.cities or city_id in self.cities


def session_seconds(settings: Settings) -> int:
    """How long a session lives unused."""
    return int(settings.PISMAN_SESSION_HOURS * 3600)


async def get_key(
    conn: Conn,
    request: Request,
    x_api_key: Annotated[
        str | None,
        Header(
            description="API key or a login session token (or send `Authorization: Bearer ...`)."
        ),
    ] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    """The caller's key or session; 401 when missing, unknown, revoked or expired."""
    plain = _presented_key(x_api_key, authorization)
    if not plain:
        raise HTTPException(
            401,
            detail=(
                "missing API key: send it in the X-API-Key header (create one with `pisman keys"
                " add`), or log in (POST /v1/auth/login) and send the session token as Bearer"
            ),
            headers={"WWW-Authenticate": "Bearer"},
        )
    if users.looks_like_session(plain):
        settings: Settings = request.app.state.settings
        user = await users.verify_session(conn, plain, session_s=session_seconds(settings))
        if user is None:
            raise HTTPException(
                401,
                detail="session expired or ended: log in again",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Caller(
            f"user {user.username}",
            user.role,
            user.cities,
            user.username,
            user.display_name,
            user.expires_at,
        )
    key = await keys.verify(conn, plain)
    if key is None:
        raise HTTPException(
            401, detail="unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return Caller(f"key {key.key_id}", key.role, (key.city_id,) if key.city_id else ())


def require_role(role: Role) -> Callable[[Caller], Coroutine[Any, Any, Caller]]:
    """A dependency admitting callers whose role includes `role` (403 otherwise)."""

    async def check(key: Annotated[Caller, Depends(get_key)]) -> Caller:
        if not key.allows(role):
            raise HTTPException(
                403,
                detail=f"this needs the {role.value} role; {key.label} has {key.role.value}",
            )
        return key

    return check


ViewerKey = Annotated[Caller, Depends(require_role(Role.VIEWER))]
PlannerKey = Annotated[Caller, Depends(require_role(Role.PLANNER))]
AdminKey = Annotated[Caller, Depends(require_role(Role.ADMIN))]


@dataclass(frozen=True, slots=True)
class City:
    """The city a request is about."""

    city_id: str
    name: str
    province: str | None
    tz: ZoneInfo
    bin_full_threshold: Decimal


@dataclass(frozen=True, slots=True)
class CityRow:
    """A row of FIND_CITY."""

    city_id: str
    name: str
    province: str | None
    timezone: str
    bin_full_threshold: Decimal


FIND_CITY = (
    "SELECT city_id, name, province, timezone, bin_full_threshold FROM city WHERE city_id = %s"
)


async def get_city(
    conn: Conn,
    key: Annotated[Caller, Depends(get_key)],
    settings: SettingsDep,
    city: Annotated[
        str | None,
        Query(description="City id (default: the server's PISMAN_CITY).", pattern=CITY_ID_PATTERN),
    ] = None,
) -> City:
    """The requested city (default PISMAN_CITY); 404 when unknown, 403 outside the key's city."""
    city_id = city or settings.PISMAN_CITY
    if not key.allows_city(city_id):
        limits = ", ".join(repr(c) for c in key.cities)
        raise HTTPException(403, detail=f"{key.label} is limited to city {limits}")
    row = await fetch_one(conn, CityRow, FIND_CITY, (city_id,))
    if row is None:
        raise HTTPException(404, detail=f"unknown city {city_id!r}")
    return City(row.city_id, row.name, row.province, ZoneInfo(row.timezone), row.bin_full_threshold)


CityDep = Annotated[City, Depends(get_city)]
