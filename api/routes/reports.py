"""GET /v1/reports/national: the monthly national summary (A–E) and the report's sections."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CityDep, Conn, HeavyLane, PlannerKey
from api.params import parse_month
from api.queries.monthly_report import month_report

router = APIRouter(prefix="/v1", tags=["exports"], dependencies=[HeavyLane])


@router.get(
    "/reports/national",
    summary="National monthly summary: A, B, %B, C, %C, B+C, D, E, recycling rate",
)
async def get_national_report(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    month: Annotated[str, Query(description="Month YYYY-MM.", examples=["2026-10"])],
) -> dict[str, Any]:
    """A is an estimate (generation target × days) and says so; the measured tonnage is beside it.
    Sections: landfill (trips, net t, t per trip, quota use), facilities (in, processed, residue),
    waste banks (kg and rupiah per material) and data quality."""
    first = parse_month("month", month)
    report = await month_report(conn, city_id=city.city_id, tz=city.tz, first=first)
    out = asdict(report)
    return {
        "city": city.city_id,
        **out.pop("national"),
        **{k: v for k, v in out.items() if k != "month"},
    }
