"""Rows read by column name into a dataclass (never by position)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row

RowT = TypeVar("RowT")


async def fetch_all(
    conn: psycopg.AsyncConnection[Any],
    row_type: type[RowT],
    query: str,
    params: Mapping[str, Any] | tuple[Any, ...],
) -> list[RowT]:
    """Every row of the statement as a `row_type` built from the columns' names."""
    async with conn.cursor(row_factory=class_row(row_type)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def fetch_one(
    conn: psycopg.AsyncConnection[Any],
    row_type: type[RowT],
    query: str,
    params: Mapping[str, Any] | tuple[Any, ...],
) -> RowT | None:
    """The statement's first row as a `row_type`, or None."""
    async with conn.cursor(row_factory=class_row(row_type)) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()
