"""THE tonnage query: weighing rollups ⨝ site ⨝ category_map, bucketed in the city's zone.

The source is the smallest rollup that answers the query exactly (sql/025_tonnage_grain.sql):
the city or district grain for day-aligned views without sites, the site-month grain for
whole months by site, weighing_daily or weighing_hourly for the rest. Every source is exact at
commit on both backends, so nothing is cached in the process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from pisman.domain import SiteType

Bucket = Literal["hour", "day", "week", "month", "total"]
# Measures: 'fate' = reduce/utilize/residual with category_map.sign (each tonne counted once);
# 'separate' = arrived separated (overlaps the fates); 'collected' = first arrival in the
# system; 'all' = every weighed kg, mapped or not (facility and waste-bank tables).
Measure = Literal["fate", "separate", "collected", "all"]
PUBLIC_GROUPS: tuple[str, ...] = ("category", "district", "site", "site_type", "material")

# Group column -> (SQL expressions selected, output names). Fixed fragments, never user text.
_GROUP_SQL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "district": (("s.district_id", "d.name"), ("district", "district_name")),
    "site": (("s.site_id", "s.name"), ("site", "site_name")),
    "site_type": (("s.site_type",), ("site_type",)),
    "material": (("r.material",), ("material",)),
    "stream": (("r.stream",), ("stream",)),
    "process_kind": (("s.process_kind",), ("process_kind",)),
    "national_term": (("cm.national_term",), ("national_term",)),
}

# The grain tables carry the site's attributes as columns (no site column at all).
_GRAIN_GROUP_SQL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **_GROUP_SQL,
    "district": (("r.district_id", "d.name"), ("district", "district_name")),
    "site_type": (("r.site_type",), ("site_type",)),
    "process_kind": (("r.process_kind",), ("process_kind",)),
}
DAILY_CITY = "tonnage_daily_city"
DAILY_DISTRICT = "tonnage_daily_district"
MONTHLY_SITE = "tonnage_monthly_site"
WEIGHING_DAILY = "weighing_daily"
WEIGHING_HOURLY = "weighing_hourly"
SOURCES: tuple[str, ...] = (
    DAILY_CITY,
    DAILY_DISTRICT,
    MONTHLY_SITE,
    WEIGHING_DAILY,
    WEIGHING_HOURLY,
)
GRAIN_SOURCES: tuple[str, ...] = (DAILY_CITY, DAILY_DISTRICT)

# Aggregated by the category_map flags first (a few rows per bucket and group); the flags are
# expanded into categories in Python, which keeps the per-row work in SQL to joins and one sum.
# {a} is the alias that carries the site's attributes (site type, district): the joined `site`
# (s) for the per-site rollups, the row itself (r) for the grain tables, which hold them.
TONNAGE_SQL = """
SELECT {bucket} AS bucket_start{groups},
       cm.category, cm.sign, coalesce(cm.separated, false), coalesce(cm.collected, false),
       sum(r.net_kg) AS kg, sum(r.weighings)::bigint AS weighings,
       sum(r.manual_weighings)::bigint AS manual_weighings, sum(r.amount_rp) AS amount_rp
FROM {source} AS r
{site_join}
{district_join}
LEFT JOIN category_map AS cm
  ON cm.city_id = r.city_id AND cm.site_type = {a}.site_type AND cm.stream = r.stream
 AND cm.material = r.material AND cm.from_own_site = r.from_own_site
WHERE r.city_id = %(city)s AND r.bucket >= %(start)s AND r.bucket < %(end)s
  AND (%(all)s OR cm.category IS NOT NULL OR cm.separated OR cm.collected)
  AND (%(site_types)s::text[] IS NULL OR {a}.site_type = ANY(%(site_types)s::text[]))
  {site_filter}
GROUP BY {group_by}
"""
SITE_JOIN = "JOIN site AS s ON s.site_id = r.site_id"
DISTRICT_JOIN = "JOIN district AS d ON d.city_id = {a}.city_id AND d.district_id = {a}.district_id"
NOT_LANDFILL = "AND {a}.site_type <> 'landfill'"
# A month of weighing_daily is ~100,000 joined rows; with the default 4 MB the planner sorts
# them on disk before grouping (2x slower). Local to the request's transaction.
SET_WORK_MEM = "SET LOCAL work_mem = '32MB'"

# District views book a landfill load to the district of the site it came from. The rollups do
# not keep origin_site_id, so the landfill gates' rows are read raw (a city's gates take a few
# thousand loads a month; weighing_site_ts_idx serves the scan) and the rollups give every other
# site: totals are unchanged, only the district moves. An origin that is not one of this city's
# sites counts as unknown: the load stays on the landfill's own district.
LANDFILL = SiteType.LANDFILL.value
# The raw loads are summed per bucket, gate, origin and flow first (a month of Bandung's gate:
# 4,300 loads, a handful of sums), and only those few rows are joined: half the time.
LANDFILL_BY_ORIGIN_SQL = """
SELECT r.bucket AS bucket_start{groups},
       cm.category, cm.sign, coalesce(cm.separated, false), coalesce(cm.collected, false),
       sum(r.kg) AS kg, sum(r.weighings)::bigint AS weighings,
       sum(r.manual_weighings)::bigint AS manual_weighings, sum(r.amount_rp) AS amount_rp
FROM (
  SELECT {bucket} AS bucket, w.city_id, w.site_id, w.origin_site_id, w.stream, w.material,
         w.from_own_site, sum(w.net_kg) AS kg, count(*) AS weighings,
         count(*) FILTER (WHERE w.manual) AS manual_weighings,
         sum(w.net_kg * w.price_per_kg) AS amount_rp
  FROM site AS g
  JOIN weighing AS w ON w.site_id = g.site_id
  WHERE w.city_id = %(city)s AND g.site_type = 'landfill'
    AND w.ts >= %(start)s AND w.ts < %(end)s
  GROUP BY 1, 2, 3, 4, 5, 6, 7
) AS r
JOIN site AS s ON s.site_id = r.site_id
LEFT JOIN site AS o ON o.site_id = r.origin_site_id AND o.city_id = s.city_id
JOIN district AS d
  ON d.city_id = s.city_id AND d.district_id = coalesce(o.district_id, s.district_id)
LEFT JOIN category_map AS cm
  ON cm.city_id = r.city_id AND cm.site_type = s.site_type AND cm.stream = r.stream
 AND cm.material = r.material AND cm.from_own_site = r.from_own_site
WHERE (%(all)s OR cm.category IS NOT NULL OR cm.separated OR cm.collected)
  AND (%(site_types)s::text[] IS NULL OR s.site_type = ANY(%(site_types)s::text[]))
GROUP BY {group_by}
"""
# Raw timestamps bucketed as the rollups bucket them: UTC hours, the city's local days.
_RAW_BUCKET_SQL = {
    "hour": "date_trunc('hour', w.ts, 'UTC')",
    "day": "date_trunc('day', w.ts, %(tz)s)",
    "week": "date_trunc('week', w.ts, %(tz)s)",
    "month": "date_trunc('month', w.ts, %(tz)s)",
    "total": "%(label)s::timestamptz",
}

_BUCKET_SQL = {
    "hour": "r.bucket",
    "day": "date_trunc('day', r.bucket, %(tz)s)",
    "week": "date_trunc('week', r.bucket, %(tz)s)",  # ISO weeks: Monday first
    "month": "date_trunc('month', r.bucket, %(tz)s)",
    "total": "%(label)s::timestamptz",
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


def _is_month_start(t: datetime, tz: ZoneInfo) -> bool:
    return _is_local_midnight(t, tz) and t.astimezone(tz).day == 1


def choose_source(q: TonnageQuery) -> str:
    """The smallest rollup that answers the query exactly.

    Day-aligned ranges (both ends at local midnight) with day or longer buckets: whole months
    in month or total buckets by site or by district come from the site-month grain (~4,400
    rows a Bandung month; the district is the site's, joined at query time); other views by
    site from weighing_daily; the rest from the district grain when grouped by district, else
    the city grain. Other whole-hour ranges: weighing_hourly.
    """
    if q.bucket != "hour" and _is_local_midnight(q.start, q.tz) and _is_local_midnight(q.end, q.tz):
        whole_months = (
            q.bucket in ("month", "total")
            and _is_month_start(q.start, q.tz)
            and _is_month_start(q.end, q.tz)
        )
        if whole_months and ("site" in q.group_by or "district" in q.group_by):
            return MONTHLY_SITE
        if "site" in q.group_by:
            return WEIGHING_DAILY
        return DAILY_DISTRICT if "district" in q.group_by else DAILY_CITY
    if _is_whole_hour(q.start.astimezone(ZoneInfo("UTC"))) and _is_whole_hour(
        q.end.astimezone(ZoneInfo("UTC"))
    ):
        return WEIGHING_HOURLY
    raise RangeNotAligned(
        "'from' and 'to' must fall on whole hours (or local midnight for day buckets)"
    )


# Which sources can stand in for a chosen one: finer rollups that answer the same query.
_FINER: dict[str, tuple[str, ...]] = {
    DAILY_CITY: (DAILY_DISTRICT, WEIGHING_DAILY, WEIGHING_HOURLY),
    DAILY_DISTRICT: (WEIGHING_DAILY, WEIGHING_HOURLY),
    MONTHLY_SITE: (DAILY_DISTRICT, WEIGHING_DAILY, WEIGHING_HOURLY),
    WEIGHING_DAILY: (WEIGHING_HOURLY,),
    WEIGHING_HOURLY: (),
}


def _check_source(q: TonnageQuery, source: str) -> None:
    """A source named by the caller must be the chosen one or a finer one."""
    natural = choose_source(q)
    by_site = "site" in q.group_by and source in GRAIN_SOURCES
    if by_site or (source != natural and source not in _FINER[natural]):
        raise ValueError(f"{source!r} cannot answer a query the {natural} source answers")


def build_sql(q: TonnageQuery, source: str | None = None) -> tuple[sql.SQL, list[str]]:
    """The statement for a query (from its chosen source, or one named) and the output names
    of its group columns."""
    if source is None:
        source = choose_source(q)
    else:
        _check_source(q, source)
    grain = source in GRAIN_SOURCES
    groups_sql = _GRAIN_GROUP_SQL if grain else _GROUP_SQL
    exprs: list[str] = []
    names: list[str] = []
    for group in q.group_by:
        if group == "category":
            continue  # expanded from the category_map flags in Python
        e, n = groups_sql[group]
        exprs += e
        names += n
    select_groups = "".join(f", {e} AS {n}" for e, n in zip(exprs, names, strict=True))
    group_by = ", ".join(str(i + 1) for i in range(len(exprs) + 5))
    # Daily sources' buckets are local days, the site-month grain's local months.
    native = {WEIGHING_HOURLY: "hour", MONTHLY_SITE: "month"}.get(source, "day")
    bucket = "r.bucket" if q.bucket == native else _BUCKET_SQL[q.bucket]
    by_origin = reads_landfill_by_origin(q)
    a = "r" if grain else "s"
    text = TONNAGE_SQL.format(
        bucket=bucket,
        groups=select_groups,
        source=source,
        group_by=group_by,
        a=a,
        site_join="" if grain else SITE_JOIN,
        district_join=DISTRICT_JOIN.format(a=a) if "district" in q.group_by else "",
        site_filter=NOT_LANDFILL.format(a=a) if by_origin else "",
    )
    return sql.SQL(text), names  # composed from fixed fragments only, never request text


def reads_landfill_by_origin(q: TonnageQuery) -> bool:
    """District views take the landfill gates' loads from raw rows, booked by origin. Grouped by
    site too, a row is the gate itself and its district stays the gate's (alerts rely on it)."""
    return (
        "district" in q.group_by
        and "site" not in q.group_by
        and (q.site_types is None or LANDFILL in q.site_types)
    )


def build_landfill_sql(q: TonnageQuery) -> sql.SQL:
    """The landfill gates' part of a district view: raw loads, district of their origin site."""
    exprs: list[str] = []
    for group in q.group_by:
        if group == "category":
            continue
        e, _ = _GROUP_SQL[group]
        # The origin's district (joined as d) replaces the gate's own.
        exprs += ["d.district_id" if x == "s.district_id" else x for x in e]
    names = [n for g in q.group_by if g != "category" for n in _GROUP_SQL[g][1]]
    select_groups = "".join(f", {e} AS {n}" for e, n in zip(exprs, names, strict=True))
    group_by = ", ".join(str(i + 1) for i in range(len(exprs) + 5))
    text = LANDFILL_BY_ORIGIN_SQL.format(
        bucket=_RAW_BUCKET_SQL[q.bucket], groups=select_groups, group_by=group_by
    )
    return sql.SQL(text)  # composed from fixed fragments only, never request text


async def tonnage(
    conn: psycopg.AsyncConnection, q: TonnageQuery, *, source: str | None = None
) -> TonnageResult:
    """Tonnage for the query; groups with zero tonnage are omitted. `source` names a rollup to
    read instead of the chosen one (a finer one that answers the same query: tests compare)."""
    for group in q.group_by:
        if group not in _GROUP_SQL and group != "category":
            raise ValueError(f"unknown group {group!r}")
    statement, names = build_sql(q, source)
    measures = q.effective_measures()
    params = {
        "city": q.city_id,
        "start": q.start,
        "end": q.end,
        "tz": q.tz.key,
        "label": q.start,
        "all": "all" in measures,
        "site_types": list(q.site_types) if q.site_types is not None else None,
    }
    await conn.execute(SET_WORK_MEM)
    raw = await (await conn.execute(statement, params)).fetchall()
    if reads_landfill_by_origin(q):
        # A month of a city's gates is a few thousand raw rows (weighing_site_ts_idx).
        cur = await conn.execute(build_landfill_sql(q), params)
        raw += await cur.fetchall()
    # Summing a long range row by row is seconds of pure Python: done on the event loop it
    # would stall every other request of the process (health checks included) until it ends.
    return await asyncio.to_thread(_aggregate, q, names, measures, raw)


def _aggregate(
    q: TonnageQuery, names: list[str], measures: tuple[Measure, ...], raw: list[tuple[Any, ...]]
) -> TonnageResult:
    """The statement's rows summed per bucket and group (categories expanded from the flags)."""
    by_category = "category" in q.group_by
    sums: dict[tuple[Any, ...], list[Any]] = {}
    n = len(names)
    for row in raw:
        bucket_start, group_values = row[0], row[1 : 1 + n]
        category, sign, separated, collected = row[1 + n : 5 + n]
        kg, weighings, manual, amount = row[5 + n :]
        kg = kg or Decimal(0)
        parts: list[tuple[str, Decimal]] = []
        if "fate" in measures and category is not None:
            parts.append((category, kg * sign))
        if "separate" in measures and separated:
            parts.append(("separate", kg))
        if "collected" in measures and collected:
            parts.append(("collected", kg))
        if "all" in measures:
            parts.append(("all", kg))
        for cat, part_kg in parts:
            key = (bucket_start, cat if by_category else None, *group_values)
            acc = sums.setdefault(key, [Decimal(0), 0, 0, None])
            acc[0] += part_kg
            acc[1] += int(weighings or 0)
            acc[2] += int(manual or 0)
            if amount is not None:
                acc[3] = (acc[3] or Decimal(0)) + amount
    result = TonnageResult(q)
    for key in sorted(sums, key=lambda k: (k[0], *((v is None, v or "") for v in k[1:]))):
        kg, weighings, manual, amount = sums[key]
        if kg == 0:
            continue
        groups: dict[str, str | None] = {}
        for group in q.group_by:
            if group == "category":
                groups["category"] = key[1]
        groups.update(dict(zip(names, key[2:], strict=True)))
        ordered = {g: groups[g] for g in _output_order(q.group_by, names)}
        result.rows.append(TonnageRow(key[0], ordered, kg, weighings, manual, amount))
    return result


def _output_order(group_by: tuple[str, ...], names: list[str]) -> list[str]:
    """Output keys in the order asked for (category where it was listed)."""
    out: list[str] = []
    for group in group_by:
        out += ["category"] if group == "category" else list(_GROUP_SQL[group][1])
    return out


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
