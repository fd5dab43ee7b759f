"""Targets in force on a date, from the `target` table (values are configuration, never code)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import psycopg


@dataclass(frozen=True, slots=True)
class Target:
    """One metric's value over its period."""

    metric: str
    value: Decimal
    period_days: Decimal
    source: str

    def per_day(self) -> Decimal:
        """The value spread evenly over the period's days."""
        return self.value / self.period_days if self.period_days else self.value

    def for_days(self, days: int) -> Decimal:
        """The value scaled to `days` days."""
        return self.per_day() * days


TARGETS_ON = """
SELECT DISTINCT ON (metric) metric, value,
       (extract(epoch FROM period) / 86400)::numeric AS period_days, source
FROM target
WHERE city_id = %(city)s AND valid_from <= %(day)s AND (valid_to IS NULL OR valid_to > %(day)s)
ORDER BY metric, valid_from DESC
"""


async def targets_on(
    conn: psycopg.AsyncConnection, *, city_id: str, day: date
) -> dict[str, Target]:
    """Each metric's target in force on `day`."""
    cur = await conn.execute(TARGETS_ON, {"city": city_id, "day": day})
    return {r[0]: Target(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()}
