"""Dependencies shared by the routes: a pooled connection, the caller's key and role, the city."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import Depends, Header, HTTPException, Query, Request

from api import keys
from api.keys import ApiKey
from api.params import CITY_PATTERN
from pisman.domain import Role
from pisman.settings import Settings


async def get_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """One pooled connection for the request (shared by its dependencies)."""
    async with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]


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
    plain = x_api_key
    if not plain and authorization and authorization.lower().startswith("bearer "):
        plain = authorization[7:].strip()
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


FIND_CITY = (
    "SELECT city_id, name, province, timezone, bin_full_threshold FROM city WHERE city_id = %s"
)


async def get_city(
    conn: Conn,
    key: Annotated[ApiKey, Depends(get_key)],
    settings: SettingsDep,
    city: Annotated[
        str | None,
        Query(description="City id (default: the server's PISMAN_CITY).", pattern=CITY_PATTERN),
    ] = None,
) -> City:
    """The requested city (default PISMAN_CITY); 404 when unknown, 403 outside the key's city."""
    city_id = city or settings.PISMAN_CITY
    if key.city_id is not None and key.city_id != city_id:
        raise HTTPException(403, detail=f"key {key.key_id} is limited to city {key.city_id!r}")
    row = await (await conn.execute(FIND_CITY, (city_id,))).fetchone()
    if row is None:
        raise HTTPException(404, detail=f"unknown city {city_id!r}")
    return City(row[0], row[1], row[2], ZoneInfo(row[3]), row[4])


CityDep = Annotated[City, Depends(get_city)]
