"""GET /v1/progress: a day and the month to date against targets and the daily generation."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CityDep, Conn, HeavyLane, ViewerKey
from api.params import local_midnight, parse_local_date
from api.queries.targets import Target, targets_on
from api.queries.tonnage import TonnageQuery, as_tonnes, tonnage

router = APIRouter(prefix="/v1", tags=["progress"], dependencies=[HeavyLane])
FATES = ("reduce", "utilize", "residual")
TARGET_METRIC = {"reduce": "reduce_t", "utilize": "utilize_t", "residual": "residual_t"}
ORGANIC = ["food", "wood"]

KBS_COUNT = """
SELECT count(*) FROM neighbourhood
WHERE city_id = %(city)s AND kbs_since IS NOT NULL AND kbs_since <= %(day)s
"""
ORGANIC_MATERIALS = "SELECT array_agg(code ORDER BY code) FROM material WHERE organic"


def _ratio(num: Decimal, den: Decimal | None) -> float | None:
    if den is None or den == 0:
        return None
    return round(float(num / den), 4)


def _num(value: Decimal | None, places: str = "0.001") -> float | None:
    return None if value is None else float(value.quantize(Decimal(places)))


def _period_block(kg: dict[str, Decimal], days: int, targets: dict[str, Target]) -> dict[str, Any]:
    """Categories with targets and shares, collected, diverted, landfilled for `days` days."""
    gen = targets.get("generation_t")
    generation_t = gen.for_days(days) if gen else None
    categories: dict[str, Any] = {}
    for cat in FATES:
        t = targets.get(TARGET_METRIC[cat])
        tonnes = kg.get(cat, Decimal(0)) / 1000
        categories[cat] = {
            "tonnes": as_tonnes(kg.get(cat, Decimal(0))),
            "target_t": _num(t.for_days(days)) if t else None,
            "share_of_generation": _ratio(tonnes, generation_t),
        }
    collected = kg.get("collected", Decimal(0))
    sep_target = targets.get("separate_share")
    categories["separate"] = {
        "tonnes": as_tonnes(kg.get("separate", Decimal(0))),
        "share_of_collected": _ratio(kg.get("separate", Decimal(0)), collected),
        "target_share": _num(sep_target.value, "0.0001") if sep_target else None,
    }
    diverted = kg.get("reduce", Decimal(0)) + kg.get("utilize", Decimal(0))
    return {
        "categories": categories,
        "collected_t": as_tonnes(collected),
        "diverted_t": as_tonnes(diverted),
        "diverted_share": _ratio(diverted / 1000, generation_t),
        "landfilled_share": _ratio(kg.get("residual", Decimal(0)) / 1000, generation_t),
    }


def _sum_days(daily: dict[date, dict[str, Decimal]], first: date, end: date) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for day, cats in daily.items():
        if first <= day < end:
            for cat, kg in cats.items():
                out[cat] = out.get(cat, Decimal(0)) + kg
    return out


@router.get("/progress", summary="Today (or a day) and month to date against targets")
async def get_progress(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    date_: Annotated[
        str | None,
        Query(
            alias="date",
            description="Local date YYYY-MM-DD (default: today).",
            examples=["2026-11-23"],
        ),
    ] = None,
    trend_days: Annotated[
        int, Query(ge=1, le=400, description="Days of daily trend ending at `date`.")
    ] = 90,
) -> dict[str, Any]:
    """Tonnage per category against targets and the daily generation; diverted and landfilled
    shares; the daily trend; a projection for the month; the landfill quota window; KBS count."""
    day = parse_local_date("date", date_, city.tz)
    tz = city.tz
    month_start = day.replace(day=1)
    end = day + timedelta(days=1)
    trend_start = day - timedelta(days=trend_days - 1)
    targets = await targets_on(conn, city_id=city.city_id, day=day)
    quota = targets.get("landfill_quota_t")
    window_days = int(quota.period_days) if quota and quota.period_days >= 1 else 14
    window_start = end - timedelta(days=window_days)
    first = min(month_start, trend_start, window_start)

    result = await tonnage(
        conn,
        TonnageQuery(
            city.city_id,
            tz,
            local_midnight(first, tz),
            local_midnight(end, tz),
            "day",
            ("category",),
            measures=("fate", "separate", "collected"),
        ),
    )
    daily: dict[date, dict[str, Decimal]] = {}
    for r in result.rows:
        d = r.bucket_start.astimezone(tz).date()
        cat = str(r.groups["category"])
        daily.setdefault(d, {})[cat] = daily.get(d, {}).get(cat, Decimal(0)) + r.kg

    day_kg = _sum_days(daily, day, end)
    mtd_kg = _sum_days(daily, month_start, end)
    mtd_days = (end - month_start).days
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    month_block = _period_block(mtd_kg, mtd_days, targets)
    month_block = {
        "from": month_start.isoformat(),
        "to": end.isoformat(),
        "days": mtd_days,
        **month_block,
    }
    month_block["projection"] = {
        "days_in_month": days_in_month,
        **{
            cat: as_tonnes(mtd_kg.get(cat, Decimal(0)) / mtd_days * days_in_month)
            for cat in (*FATES, "separate")
        },
    }
    trend = []
    for i in range(trend_days):
        d = trend_start + timedelta(days=i)
        cats = daily.get(d, {})
        trend.append(
            {
                "date": d.isoformat(),
                **{c: as_tonnes(cats.get(c, Decimal(0))) for c in (*FATES, "separate")},
            }
        )

    used_kg = _sum_days(daily, window_start, end).get("residual", Decimal(0))
    landfill_quota = None
    if quota:
        quota_kg = quota.value * 1000
        landfill_quota = {
            "quota_t": _num(quota.value),
            "period_days": window_days,
            "window_start": window_start.isoformat(),
            "window_end": end.isoformat(),
            "used_t": as_tonnes(used_kg),
            "remaining_t": as_tonnes(quota_kg - used_kg),
            "used_share": _ratio(used_kg, quota_kg),
        }

    organic = await tonnage(
        conn,
        TonnageQuery(
            city.city_id,
            tz,
            local_midnight(day, tz),
            local_midnight(end, tz),
            "total",
            ("category", "material"),
            measures=("fate",),
            site_types=("landfill",),
        ),
    )
    organic_codes = set((await (await conn.execute(ORGANIC_MATERIALS)).fetchone() or [[]])[0] or [])
    organic_kg = sum(
        (
            r.kg
            for r in organic.rows
            if r.groups["category"] == "residual" and r.groups["material"] in organic_codes
        ),
        Decimal(0),
    )
    kbs = (
        await (await conn.execute(KBS_COUNT, {"city": city.city_id, "day": day})).fetchone() or [0]
    )[0]
    kbs_target = targets.get("kbs_rw")
    gen = targets.get("generation_t")
    return {
        "city": city.city_id,
        "date": day.isoformat(),
        "timezone": tz.key,
        "as_of": datetime.now(tz).isoformat(timespec="seconds"),
        "generation_t_per_day": _num(gen.per_day()) if gen else None,
        "day": _period_block(day_kg, 1, targets),
        "month_to_date": month_block,
        "trend": trend,
        "landfill_quota": landfill_quota,
        "kbs": {"count": int(kbs), "target": int(kbs_target.value) if kbs_target else None},
        "organic_at_landfill_t": as_tonnes(organic_kg),
    }
