"""GET /v1/reports/national: the national summary (A–E) with coverage, for a month or a year."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CityDep, Conn, HeavyLane, PlannerKey
from api.errors import ERROR_RESPONSES
from api.params import bad_request, parse_month, parse_year
from api.queries.monthly_report import month_report, summarize, year_reports
from pisman.contract import NationalMonthAnswer, NationalYearAnswer

router = APIRouter(
    prefix="/v1", tags=["exports"], dependencies=[HeavyLane], responses=ERROR_RESPONSES
)


@router.get(
    "/reports/national",
    summary="National summary with coverage: A, B, %B, C, %C, B+C, D, E, recycling rate",
)
async def get_national_report(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    month: Annotated[
        str | None, Query(description="Month YYYY-MM (or give `year`).", examples=["2026-10"])
    ] = None,
    year: Annotated[
        str | None,
        Query(description="Year YYYY: twelve months and the annual terms.", examples=["2026"]),
    ] = None,
) -> NationalMonthAnswer | NationalYearAnswer:
    """A is the generation target over the days with data (an estimate, and says so); shares are
    over that A. `coverage` says which days and scales sent data and whether the month is
    complete, partial, in progress, future or without data. With `year`: `months` (each month's
    terms and coverage) and `annual` (exact sums over the months, shares over the covered A).
    Sections of a month: landfill, facilities, waste banks and data quality."""
    if (month is None) == (year is None):
        raise bad_request("give exactly one of 'month' (YYYY-MM) or 'year' (YYYY)")
    if year is not None:
        y = parse_year("year", year)
        reports = await year_reports(conn, city_id=city.city_id, tz=city.tz, year=y)
        return NationalYearAnswer.model_validate(
            {
                "city": city.city_id,
                "year": y,
                "annual": summarize(reports, str(y)),
                "months": [{**m.national, "coverage": m.coverage} for m in reports],
            }
        )
    assert month is not None
    first = parse_month("month", month)
    report = (await month_report(conn, city_id=city.city_id, tz=city.tz, first=first)).public()
    return NationalMonthAnswer.model_validate(
        {
            "city": city.city_id,
            **report.pop("national"),
            **{k: v for k, v in report.items() if k != "month"},
        }
    )
