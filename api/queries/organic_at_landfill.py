"""THE organic-at-landfill rule: residual tonnage of organic materials weighed at landfill gates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.params import local_midnight
from api.queries.rows import fetch_one
from api.queries.tonnage import TonnageQuery, tonnage
from pisman.domain import Category, SiteType

# Which materials are organic is configuration (the material table; TPA Sarimukti refuses them).
ORGANIC_MATERIALS = (
    "SELECT coalesce(array_agg(code ORDER BY code), '{}') AS codes FROM material WHERE organic"
)


@dataclass(frozen=True, slots=True)
class OrganicCodes:
    """The material codes the schema marks organic."""

    codes: list[str]


@dataclass(frozen=True, slots=True)
class OrganicLoad:
    """Organic kilograms that reached one landfill gate on a day (its district is the gate's)."""

    site_id: str
    district_id: str
    kg: Decimal


async def organic_at_landfill(
    conn: psycopg.AsyncConnection[Any], *, city_id: str, tz: ZoneInfo, day: date
) -> list[OrganicLoad]:
    """Per landfill gate, the organic residual of a local day (gates without any are left out)."""
    row = await fetch_one(conn, OrganicCodes, ORGANIC_MATERIALS, ())
    organic = set(row.codes) if row is not None else set()
    result = await tonnage(
        conn,
        TonnageQuery(
            city_id,
            tz,
            local_midnight(day, tz),
            local_midnight(day + timedelta(days=1), tz),
            "total",
            ("category", "site", "district", "material"),
            measures=("fate",),
            site_types=(SiteType.LANDFILL.value,),
        ),
    )
    per_site: dict[tuple[str, str], Decimal] = {}
    for r in result.rows:
        if r.groups["category"] == Category.RESIDUAL and r.groups["material"] in organic:
            key = (str(r.groups["site"]), str(r.groups["district"]))
            per_site[key] = per_site.get(key, Decimal(0)) + r.kg
    return [OrganicLoad(site, district, kg) for (site, district), kg in per_site.items()]
