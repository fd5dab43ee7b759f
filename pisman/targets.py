"""THE target upsert: a city's target for a metric, valid from a date (and to a date, when set).

Used by the city file loader (pisman/citydata.py) and the admin API (PUT /v1/targets/{metric}),
so a target set either way is stored the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import class_row

from pisman.domain import TargetMetric

# Replacing a target replaces all of it: period, value, end date and source document.
UPSERT_TARGET = """
INSERT INTO target (city_id, metric, period, value, valid_from, valid_to, source)
VALUES (%(city)s, %(metric)s, %(period)s::interval, %(value)s, %(valid_from)s, %(valid_to)s,
        %(source)s)
ON CONFLICT (city_id, metric, valid_from) DO UPDATE SET period = EXCLUDED.period,
  value = EXCLUDED.value, valid_to = EXCLUDED.valid_to, source = EXCLUDED.source
RETURNING metric, value, (extract(epoch FROM period) / 86400)::int AS period_days, valid_from,
          valid_to, source
"""
LIST_TARGETS = """
SELECT metric, value, (extract(epoch FROM period) / 86400)::int AS period_days, valid_from,
       valid_to, source
FROM target WHERE city_id = %(city)s ORDER BY metric, valid_from
"""


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target to store: `period` is a span of days or an interval such as '1 month'."""

    metric: TargetMetric
    value: Decimal | float
    period: timedelta | str
    valid_from: date
    valid_to: date | None
    source: str

    def params(self, city_id: str) -> dict[str, Any]:
        """The statement's parameters for a city."""
        return {
            "city": city_id,
            "metric": self.metric.value,
            "period": self.period,
            "value": self.value,
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class StoredTarget:
    """A row of the target table (the period in whole days)."""

    metric: str
    value: Decimal
    period_days: int
    valid_from: date
    valid_to: date | None
    source: str


def upsert_targets(
    conn: psycopg.Connection[Any], city_id: str, targets: Iterable[TargetSpec]
) -> None:
    """Store each target (in the caller's transaction)."""
    with conn.cursor() as cur:
        cur.executemany(UPSERT_TARGET, [t.params(city_id) for t in targets])


async def upsert_target(
    conn: psycopg.AsyncConnection[Any], city_id: str, target: TargetSpec
) -> StoredTarget:
    """Store one target (in the caller's transaction) and return the stored row."""
    async with conn.cursor(row_factory=class_row(StoredTarget)) as cur:
        await cur.execute(UPSERT_TARGET, target.params(city_id))
        row = await cur.fetchone()
    assert row is not None  # an upsert always returns its row
    return row


async def list_targets(conn: psycopg.AsyncConnection[Any], city_id: str) -> list[StoredTarget]:
    """Every target row of a city, by metric and start date."""
    async with conn.cursor(row_factory=class_row(StoredTarget)) as cur:
        await cur.execute(LIST_TARGETS, {"city": city_id})
        return await cur.fetchall()
