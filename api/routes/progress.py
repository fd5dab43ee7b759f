"""GET /v1/progress: a day and the month to date against targets and the daily generation."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.deps import CityDep, Conn, HeavyLane, ViewerKey
from api.errors import ERROR_RESPONSES
from api.params import bad_request, local_midnight, parse_local_date
from api.queries.organic_at_landfill import organic_at_landfill
from api.queries.pace import HOURS, DayShares, expected_shares
from api.queries.rows import fetch_one
from api.queries.targets import Target, targets_on
from api.queries.tonnage import RangeNotAligned, TonnageQuery, as_tonnes, tonnage
from pisman.contract import (
    DayFigures,
    FateFigure,
    Kbs,
    LandfillQuota,
    MonthToDate,
    Pace,
    PaceFigure,
    PeriodCategories,
    PeriodFigures,
    ProgressAnswer,
    Projection,
    SeparateFigure,
    TrendDay,
)
from pisman.domain import TargetMetric

router = APIRouter(
    prefix="/v1", tags=["progress"], dependencies=[HeavyLane], responses=ERROR_RESPONSES
)
TARGET_METRIC = {
    "reduce": TargetMetric.REDUCE_T,
    "utilize": TargetMetric.UTILIZE_T,
    "residual": TargetMetric.RESIDUAL_T,
}
DEFAULT_QUOTA_DAYS = 14

KBS_COUNT = """
SELECT count(*) AS count FROM neighbourhood
WHERE city_id = %(city)s AND kbs_since IS NOT NULL AND kbs_since <= %(day)s
"""


@dataclass(frozen=True, slots=True)
class KbsRow:
    """Neighbourhoods declared waste-free by a day."""

    count: int


Kg = dict[str, Decimal]


def _ratio(num: Decimal, den: Decimal | None) -> float | None:
    if den is None or den == 0:
        return None
    return round(float(num / den), 4)


def _num(value: Decimal | None, places: str = "0.001") -> float | None:
    return None if value is None else float(value.quantize(Decimal(places)))


def _fate(kg: Kg, cat: str, days: int, targets: dict[str, Target]) -> FateFigure:
    gen = targets.get(TargetMetric.GENERATION_T)
    t = targets.get(TARGET_METRIC[cat])
    tonnes = kg.get(cat, Decimal(0))
    return FateFigure(
        tonnes=as_tonnes(tonnes),
        target_t=_num(t.for_days(days)) if t else None,
        share_of_generation=_ratio(tonnes / 1000, gen.for_days(days) if gen else None),
    )


def period_figures(kg: Kg, days: int, targets: dict[str, Target]) -> PeriodFigures:
    """Categories with targets and shares, collected, diverted, landfilled for `days` days."""
    gen = targets.get(TargetMetric.GENERATION_T)
    generation_t = gen.for_days(days) if gen else None
    collected = kg.get("collected", Decimal(0))
    sep_target = targets.get(TargetMetric.SEPARATE_SHARE)
    separate = kg.get("separate", Decimal(0))
    diverted = kg.get("reduce", Decimal(0)) + kg.get("utilize", Decimal(0))
    return PeriodFigures(
        categories=PeriodCategories(
            reduce=_fate(kg, "reduce", days, targets),
            utilize=_fate(kg, "utilize", days, targets),
            residual=_fate(kg, "residual", days, targets),
            separate=SeparateFigure(
                tonnes=as_tonnes(separate),
                share_of_collected=_ratio(separate, collected),
                target_share=_num(sep_target.value, "0.0001") if sep_target else None,
            ),
        ),
        collected_t=as_tonnes(collected),
        diverted_t=as_tonnes(diverted),
        diverted_share=_ratio(diverted / 1000, generation_t),
        landfilled_share=_ratio(kg.get("residual", Decimal(0)) / 1000, generation_t),
    )


def _sum_days(daily: dict[date, Kg], first: date, end: date) -> Kg:
    out: Kg = {}
    for day, cats in daily.items():
        if first <= day < end:
            for cat, kg in cats.items():
                out[cat] = out.get(cat, Decimal(0)) + kg
    return out


def _tonnes_of(kg: Kg) -> dict[str, float]:
    return {
        c: as_tonnes(kg.get(c, Decimal(0))) for c in ("reduce", "utilize", "residual", "separate")
    }


async def daily_kg(
    conn: Conn, city_id: str, tz: ZoneInfo, first: date, end: date
) -> dict[date, Kg]:
    """Kilograms per local day and category (fates, separate, collected) over [first, end)."""
    result = await tonnage(
        conn,
        TonnageQuery(
            city_id,
            tz,
            local_midnight(first, tz),
            local_midnight(end, tz),
            "day",
            ("category",),
            measures=("fate", "separate", "collected"),
        ),
    )
    daily: dict[date, Kg] = {}
    for r in result.rows:
        d = r.bucket_start.astimezone(tz).date()
        cats = daily.setdefault(d, {})
        cat = str(r.groups["category"])
        cats[cat] = cats.get(cat, Decimal(0)) + r.kg
    return daily


def month_to_date(daily: dict[date, Kg], day: date, targets: dict[str, Target]) -> MonthToDate:
    """The month up to and including `day`, and its projection to the month's end."""
    month_start, end = day.replace(day=1), day + timedelta(days=1)
    kg = _sum_days(daily, month_start, end)
    days = (end - month_start).days
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    projected = {c: v / days * days_in_month for c, v in kg.items()}
    return MonthToDate(
        from_=month_start.isoformat(),
        to=end.isoformat(),
        days=days,
        **period_figures(kg, days, targets).model_dump(),
        projection=Projection(days_in_month=days_in_month, **_tonnes_of(projected)),
    )


def landfill_quota(
    daily: dict[date, Kg], quota: Target | None, window_start: date, end: date
) -> LandfillQuota | None:
    """Residual tonnage in the quota's window ending with the day, against the quota."""
    if quota is None:
        return None
    used_kg = _sum_days(daily, window_start, end).get("residual", Decimal(0))
    quota_kg = quota.value * 1000
    return LandfillQuota(
        quota_t=_num(quota.value),
        period_days=(end - window_start).days,
        window_start=window_start.isoformat(),
        window_end=end.isoformat(),
        used_t=as_tonnes(used_kg),
        remaining_t=as_tonnes(quota_kg - used_kg),
        used_share=_ratio(used_kg, quota_kg),
    )


AT_PATTERN = re.compile(r"^([0-9]{2}):00$")
PACE_TARGETS = {
    "collected": TargetMetric.GENERATION_T,
    "reduce": TargetMetric.REDUCE_T,
    "utilize": TargetMetric.UTILIZE_T,
}


def parse_at(value: str | None) -> int | None:
    """`at` as a whole local hour 0..24 (None: not given); 422 otherwise."""
    if value is None or value == "":
        return None
    match = AT_PATTERN.match(value.strip())
    if not match or int(match.group(1)) > HOURS:
        raise bad_request(
            f"'at' must be a whole local hour from 00:00 to 24:00 such as 04:00; got {value[:40]!r}"
        )
    return int(match.group(1))


def residual_ceiling(targets: dict[str, Target]) -> Decimal | None:
    """Tonnes a day may send to the landfill: the residual target, else the quota per day."""
    residual = targets.get(TargetMetric.RESIDUAL_T)
    if residual is not None:
        return residual.per_day()
    quota = targets.get(TargetMetric.LANDFILL_QUOTA_T)
    return quota.per_day() if quota is not None else None


def _over(value_kg: Decimal, limit_t: Decimal | None) -> bool | None:
    return None if limit_t is None else value_kg / 1000 > limit_t


def day_figures(daily: dict[date, Kg], day: date, targets: dict[str, Target]) -> DayFigures:
    """One whole local day with its residual against the ceiling."""
    kg = daily.get(day, {})
    ceiling = residual_ceiling(targets)
    return DayFigures(
        date=day.isoformat(),
        has_data=any(v != 0 for v in kg.values()),
        residual_ceiling_t=_num(ceiling),
        residual_over_ceiling=_over(kg.get("residual", Decimal(0)), ceiling),
        **period_figures(kg, 1, targets).model_dump(),
    )


def pace_figures(so_far: Kg, shares: DayShares, targets: dict[str, Target], at: datetime) -> Pace:
    """Each pace measure so far against its day target times the share expected by `at`."""
    figures: dict[str, PaceFigure] = {}
    for measure, share in shares.measures.items():
        if measure == "residual":
            day_target = residual_ceiling(targets)
        else:
            target = targets.get(PACE_TARGETS[measure])
            day_target = target.per_day() if target is not None else None
        expected = (
            day_target * share.share if day_target is not None and share.share is not None else None
        )
        kg = so_far.get(measure, Decimal(0))
        ceiling = measure == "residual"
        figures[measure] = PaceFigure(
            so_far_t=as_tonnes(kg),
            day_target_t=_num(day_target),
            expected_share=_num(share.share, "0.0001"),
            expected_t=_num(expected),
            basis=share.basis,
            history_days=share.history_days,
            ceiling=ceiling,
            over_ceiling=_over(kg, day_target) if ceiling else None,
            above_pace=_over(kg, expected) if ceiling else None,
        )
    return Pace(
        at=at.isoformat(timespec="seconds"),
        history_days=[d.isoformat() for d in shares.history_days],
        profile_source=shares.profile_source,
        **figures,
    )


async def so_far_kg(conn: Conn, city_id: str, tz: ZoneInfo, day: date, hour: int) -> Kg:
    """Kilograms per category from the day's local midnight to `hour` o'clock (hourly rollup)."""
    if hour == 0:
        return {}
    start = local_midnight(day, tz)
    try:
        result = await tonnage(
            conn,
            TonnageQuery(
                city_id,
                tz,
                start,
                start + timedelta(hours=hour),
                "total",
                ("category",),
                measures=("fate", "separate", "collected"),
            ),
        )
    except RangeNotAligned as exc:
        raise bad_request(f"'at' cannot be used in this city's time zone: {exc}") from None
    out: Kg = {}
    for r in result.rows:
        cat = str(r.groups["category"])
        out[cat] = out.get(cat, Decimal(0)) + r.kg
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
    at: Annotated[
        str | None,
        Query(
            description="Local whole hour HH:00 (00:00-24:00) the pace is for, counting what was "
            "weighed before it (default: now for today, 24:00 for a past day, 00:00 for a future one).",
            examples=["04:00"],
        ),
    ] = None,
) -> ProgressAnswer:
    """Tonnage per category against targets and the daily generation; diverted and landfilled
    shares; the daily trend; a projection for the month; the landfill quota window; KBS count."""
    tz = city.tz
    day = parse_local_date("date", date_, tz)
    at_hour = parse_at(at)
    end = day + timedelta(days=1)
    trend_start = day - timedelta(days=trend_days - 1)
    targets = await targets_on(conn, city_id=city.city_id, day=day)
    quota = targets.get(TargetMetric.LANDFILL_QUOTA_T)
    window_days = int(quota.period_days) if quota and quota.period_days >= 1 else DEFAULT_QUOTA_DAYS
    window_start = end - timedelta(days=window_days)
    yesterday = day - timedelta(days=1)
    first = min(day.replace(day=1), trend_start, window_start, yesterday)
    daily = await daily_kg(conn, city.city_id, tz, first, end)

    trend = [
        TrendDay(date=d.isoformat(), **_tonnes_of(daily.get(d, {})))
        for d in (trend_start + timedelta(days=i) for i in range(trend_days))
    ]
    organic = await organic_at_landfill(conn, city_id=city.city_id, tz=tz, day=day)
    kbs = await fetch_one(conn, KbsRow, KBS_COUNT, {"city": city.city_id, "day": day})
    kbs_target = targets.get(TargetMetric.KBS_RW)
    gen = targets.get(TargetMetric.GENERATION_T)
    now = datetime.now(tz)
    if at_hour is not None:
        pace_at = local_midnight(day, tz) + timedelta(hours=at_hour)
        clock_h = Decimal(at_hour)
        so_far = await so_far_kg(conn, city.city_id, tz, day, at_hour)
    else:
        # Everything stored for the day so far, against the share expected by this minute
        # (today), the whole target (a past day) or nothing (a future day).
        if day == now.date():
            pace_at = now.replace(microsecond=0)
            clock_h = Decimal(now.hour) + Decimal(now.minute * 60 + now.second) / 3600
        else:
            clock_h = Decimal(HOURS if day < now.date() else 0)
            pace_at = local_midnight(day, tz) + timedelta(hours=int(clock_h))
        so_far = daily.get(day, {})
    shares = await expected_shares(conn, city_id=city.city_id, tz=tz, day=day, clock_h=clock_h)
    # Today's targets; yesterday's were in force yesterday.
    yesterday_targets = await targets_on(conn, city_id=city.city_id, day=yesterday)
    return ProgressAnswer(
        city=city.city_id,
        date=day.isoformat(),
        timezone=tz.key,
        as_of=now.isoformat(timespec="seconds"),
        generation_t_per_day=_num(gen.per_day()) if gen else None,
        day=period_figures(_sum_days(daily, day, end), 1, targets),
        month_to_date=month_to_date(daily, day, targets),
        trend=trend,
        landfill_quota=landfill_quota(daily, quota, window_start, end),
        kbs=Kbs(
            count=kbs.count if kbs else 0, target=int(kbs_target.value) if kbs_target else None
        ),
        organic_at_landfill_t=as_tonnes(sum((o.kg for o in organic), Decimal(0))),
        pace=pace_figures(so_far, shares, targets, pace_at),
        yesterday=day_figures(daily, yesterday, yesterday_targets),
    )
