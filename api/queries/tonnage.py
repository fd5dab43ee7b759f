"""THE tonnage query: weighing rollups ⨝ site ⨝ category_map, bucketed in the city's zone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

Bucket = Literal["hour", "day", "week", "month", "total"]
BUCKETS: tuple[str, ...] = ("hour", "day", "week", "month", "total")
# Measures: 'fate' = reduce/utilize/residual with category_map.sign (each tonne counted once);
# 'separate' = arrived separated (overlaps the fates); 'collected' = first arrival in the
# system; 'all' = every weighed kg, mapped or not (facility and waste-bank tables).
Measure = Literal["fate", "separate", "collected", "all"]
PUBLIC_GROUPS: tuple[str, ...] = ("category", "district", "site", "site_type", "material")
ALL_GROUPS: tuple[str, ...] = (*PUBLIC_GROUPS, "stream", "process_kind", "national_term")

# Group column -> (SQL expressions selected, output names). Fixed fragments, never user text.
_GROUP_SQL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "category": (("c.category",), ("category",)),
    "district": (("s.district_id", "d.name"), ("district", "district_name")),
    "site": (("s.site_id", "s.name"), ("site", "site_name")),
    "site_type": (("s.site_type",), ("site_type",)),
    "material": (("r.material",), ("material",)),
    "stream": (("r.stream",), ("stream",)),
    "process_kind": (("s.process_kind",), ("process_kind",)),
    "national_term": (("cm.national_term",), ("national_term",)),
}

TONNAGE_SQL = """
SELECT {bucket} AS bucket_start{groups},
       sum(c.kg) AS kg, sum(r.weighings)::bigint AS weighings,
       sum(r.manual_weighings)::bigint AS manual_weighings, sum(r.amount_rp) AS amount_rp
FROM {source} AS r
JOIN site AS s ON s.site_id = r.site_id
JOIN district AS d ON d.city_id = s.city_id AND d.district_id = s.district_id
LEFT JOIN category_map AS cm
  ON cm.city_id = r.city_id AND cm.site_type = s.site_type AND cm.stream = r.stream
 AND cm.material = r.material AND cm.from_own_site = r.from_own_site
CROSS JOIN LATERAL (VALUES
    ('fate', cm.category, r.net_kg * cm.sign),
    ('separate', CASE WHEN cm.separated THEN 'separate' END, r.net_kg),
    ('collected', CASE WHEN cm.collected THEN 'collected' END, r.net_kg),
    ('all', 'all', r.net_kg)
) AS c(measure, category, kg)
WHERE r.city_id = %(city)s AND r.bucket >= %(start)s AND r.bucket < %(end)s
  AND c.measure = ANY(%(measures)s) AND c.category IS NOT NULL
  AND (%(site_types)s::text[] IS NULL OR s.site_type = ANY(%(site_types)s::text[]))
GROUP BY {group_by}
ORDER BY {group_by}
"""

_BUCKET_SQL = {
    "hour": "r.bucket",
    "day": "date_trunc('day', r.bucket, %(tz)s)",
    "week": "date_trunc('week', r.bucket, %(tz)s)",  # ISO weeks: Monday first
    "month": "date_trunc('month', r.bucket, %(tz)s)",
    "total": "%(start)s::timestamptz",
}


class RangeNotAligned(ValueError):
    """The range cannot be answered from the rollups at this bucket size; str() says why."""


@dataclass(frozen=True, slots=True)
class TonnageQuery:
    """What to compute: city, half-open range, bucket size, grouping and measures."""

    city_id: str
    tz: ZoneInfo
    start: datetime
    end: datetime
    bucket: Bucket = "day"
    group_by: tuple[str, ...] = ("category",)
    measures: tuple[Measure, ...] = ()
    site_types: tuple[str, ...] | None = None

    def effective_measures(self) -> tuple[Measure, ...]:
        """Fates only unless grouped by category (then separate too), or as asked."""
        if self.measures:
            return self.measures
        return ("fate", "separate") if "category" in self.group_by else ("fate",)


@dataclass(slots=True)
class TonnageRow:
    """One bucket × group: exact kilograms and counts."""

    bucket_start: datetime
    groups: dict[str, str | None]
    kg: Decimal
    weighings: int
    manual_weighings: int
    amount_rp: Decimal | None

    @property
    def tonnes(self) -> Decimal:
        """Exact tonnes (round only when showing)."""
        return self.kg / 1000


@dataclass(slots=True)
class TonnageResult:
    """Rows plus what they were computed over."""

    query: TonnageQuery
    rows: list[TonnageRow] = field(default_factory=list)

    def total_kg(self, *, category: str | None = None) -> Decimal:
        """Sum over rows (of one category when given)."""
        return sum(
            (r.kg for r in self.rows if category is None or r.groups.get("category") == category),
            Decimal(0),
        )

    def fate_kg(self) -> Decimal:
        """Fate tonnage only (separate and collected excluded), in kg."""
        if "category" not in self.query.group_by:
            return self.total_kg()
        return sum(
            (
                r.kg
                for r in self.rows
                if r.groups.get("category") in ("reduce", "utilize", "residual")
            ),
            Decimal(0),
        )


def _is_local_midnight(t: datetime, tz: ZoneInfo) -> bool:
    local = t.astimezone(tz)
    return local.hour == 0 and local.minute == 0 and local.second == 0 and local.microsecond == 0


def _is_whole_hour(t: datetime) -> bool:
    return (
        t.minute == 0
        and t.second == 0
        and t.microsecond == 0
        and t.utcoffset() is not None
        and (t.utcoffset() or timedelta(0)) % timedelta(hours=1) == timedelta(0)
    )


def choose_source(q: TonnageQuery) -> str:
    """weighing_daily when both ends are local midnights and buckets are days or longer."""
    if q.bucket != "hour" and _is_local_midnight(q.start, q.tz) and _is_local_midnight(q.end, q.tz):
        return "weighing_daily"
    if _is_whole_hour(q.start.astimezone(ZoneInfo("UTC"))) and _is_whole_hour(
        q.end.astimezone(ZoneInfo("UTC"))
    ):
        return "weighing_hourly"
    raise RangeNotAligned(
        "'from' and 'to' must fall on whole hours (or local midnight for day buckets)"
    )


def build_sql(q: TonnageQuery) -> tuple[sql.Composed, list[str]]:
    """The statement for a query and the output names of its group columns."""
    exprs: list[str] = []
    names: list[str] = []
    for group in q.group_by:
        e, n = _GROUP_SQL[group]
        exprs += e
        names += n
    select_groups = "".join(f", {e} AS {n}" for e, n in zip(exprs, names, strict=True))
    group_by = ", ".join(["1", *(str(i + 2) for i in range(len(exprs)))])
    text = TONNAGE_SQL.format(
        bucket=_BUCKET_SQL[q.bucket],
        groups=select_groups,
        source=choose_source(q),
        group_by=group_by,
    )
    return sql.SQL(text), names  # type: ignore[arg-type]  # composed from fixed fragments only


async def tonnage(conn: psycopg.AsyncConnection, q: TonnageQuery) -> TonnageResult:
    """Tonnage for the query; groups with zero tonnage are omitted."""
    for group in q.group_by:
        if group not in _GROUP_SQL:
            raise ValueError(f"unknown group {group!r}")
    statement, names = build_sql(q)
    params = {
        "city": q.city_id,
        "start": q.start,
        "end": q.end,
        "tz": q.tz.key,
        "measures": list(q.effective_measures()),
        "site_types": list(q.site_types) if q.site_types is not None else None,
    }
    cur = await conn.execute(statement, params)
    result = TonnageResult(q)
    for row in await cur.fetchall():
        kg = row[-4] or Decimal(0)
        if kg == 0:
            continue
        groups = dict(zip(names, row[1:-4], strict=True))
        result.rows.append(
            TonnageRow(row[0], groups, kg, int(row[-3] or 0), int(row[-2] or 0), row[-1])
        )
    return result


def as_tonnes(kg: Decimal) -> float:
    """kg → tonnes rounded to 3 decimals (kg precision), as a JSON number."""
    return float((kg / 1000).quantize(Decimal("0.001")))


def tonnes_rows(result: TonnageResult) -> list[dict[str, object]]:
    """Rows shaped for JSON: bucket_start with the city's offset, group columns, tonnes."""
    tz = result.query.tz
    out: list[dict[str, object]] = []
    for r in result.rows:
        item: dict[str, object] = {"bucket_start": r.bucket_start.astimezone(tz).isoformat()}
        item.update(r.groups)
        item["tonnes"] = as_tonnes(r.kg)
        out.append(item)
    return out


def totals_by_group(result: TonnageResult) -> list[dict[str, object]]:
    """Per-group totals over all buckets, summed exactly, then rounded."""
    sums: dict[tuple[tuple[str, str | None], ...], Decimal] = {}
    for r in result.rows:
        key = tuple(r.groups.items())
        sums[key] = sums.get(key, Decimal(0)) + r.kg
    return [
        {**dict(k), "tonnes": as_tonnes(v)}
        for k, v in sorted(sums.items(), key=lambda kv: _sort_key(kv[0]))
    ]


def _sort_key(key: Sequence[tuple[str, str | None]]) -> tuple[str, ...]:
    return tuple(v or "" for _, v in key)
