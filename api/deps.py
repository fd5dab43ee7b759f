"""Dependencies shared by the routes: a pooled connection, the caller's key and role, the city."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import Depends, Header, HTTPException, Query, Request

from api.limits import retry_after
from api.queries.rows import fetch_one
from pisman import keys
from pisman.domain import CITY_ID_PATTERN, Role
from pisman.keys import ApiKey
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
    if plain is not None and keys.split_key(plain) is not None:
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


async def get_key(
    conn: Conn,
    x_api_key: Annotated[
        str | None, Header(description="API key (or send `Authorization: Bearer <key>`).")
    ] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ApiKey:
    """The caller's key; 401 when missing or unknown."""
    plain = _presented_key(x_api_key, authorization)
    if not plain:
        raise HTTPException(
            401,
            detail="missing API key: send it in the X-API-Key header (create one with `pisman keys add`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await keys.verify(conn, plain)
    if key is None:
        raise HTTPException(
            401, detail="unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return key


def require_role(role: Role) -> Callable[[ApiKey], Coroutine[Any, Any, ApiKey]]:
    """A dependency admitting keys whose role includes `role` (403 otherwise)."""

    async def check(key: Annotated[ApiKey, Depends(get_key)]) -> ApiKey:
        if not key.allows(role):
            raise HTTPException(
                403,
                detail=f"this needs the {role.value} role; key {key.key_id} has {key.role.value}",
            )
        return key

    return check


ViewerKey = Annotated[ApiKey, Depends(require_role(Role.VIEWER))]
PlannerKey = Annotated[ApiKey, Depends(require_role(Role.PLANNER))]
AdminKey = Annotated[ApiKey, Depends(require_role(Role.ADMIN))]


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
    key: Annotated[ApiKey, Depends(get_key)],
    settings: SettingsDep,
    city: Annotated[
        str | None,
        Query(description="City id (default: the server's PISMAN_CITY).", pattern=CITY_ID_PATTERN),
    ] = None,
) -> City:
    """The requested city (default PISMAN_CITY); 404 when unknown, 403 outside the key's city."""
    city_id = city or settings.PISMAN_CITY
    if key.city_id is not None and key.city_id != city_id:
        raise HTTPException(403, detail=f"key {key.key_id} is limited to city {key.city_id!r}")
    row = await fetch_one(conn, CityRow, FIND_CITY, (city_id,))
    if row is None:
        raise HTTPException(404, detail=f"unknown city {city_id!r}")
    return City(row.city_id, row.name, row.province, ZoneInfo(row.timezone), row.bin_full_threshold)


CityDep = Annotated[City, Depends(get_city)]
