"""GET /v1/meta: labels for the UI in both languages; GET /v1/cities: the cities a caller may see."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter

from api.deps import CityDep, CityRow, Conn, LightLane, SettingsDep, ViewerKey
from api.errors import ERROR_RESPONSES
from api.queries.rows import fetch_all
from pisman.contract import CitiesAnswer, CityInfo, District, MetaAnswer

router = APIRouter(prefix="/v1", tags=["meta"], dependencies=[LightLane], responses=ERROR_RESPONSES)

# One statement for every list: each round trip is a wait for the database, and under load
# the waits, not the work, make up a request's time.
LABELS = """
SELECT 'categories' AS kind, code, label_id, label_en, code AS sort_key FROM category
UNION ALL SELECT 'materials', code, label_id, label_en, code FROM material
UNION ALL SELECT 'streams', code, label_id, label_en, code FROM stream
UNION ALL SELECT 'site_types', code, label_id, label_en, code FROM site_type
UNION ALL SELECT 'device_kinds', code, label_id, label_en, code FROM device_kind
UNION ALL SELECT 'target_metrics', code, label_id, label_en, code FROM target_metric
UNION ALL SELECT 'districts', district_id, name, NULL, name FROM district WHERE city_id = %s
ORDER BY 1, 5, 2
"""
LISTS = ("categories", "materials", "streams", "site_types", "device_kinds", "target_metrics")


@dataclass(frozen=True, slots=True)
class LabelRow:
    """A row of LABELS: a district's name comes as its `label_id`."""

    kind: str
    code: str
    label_id: str
    label_en: str | None
    sort_key: str


@router.get("/meta", summary="Labels (Indonesian and English) and the city's districts")
async def get_meta(conn: Conn, key: ViewerKey, city: CityDep) -> MetaAnswer:
    """Vocabulary for the UI: categories, materials, streams, site types, districts."""
    lists: dict[str, list[dict[str, str | None]]] = {}
    for r in await fetch_all(conn, LabelRow, LABELS, (city.city_id,)):
        if r.kind == "districts":
            item: dict[str, str | None] = {"district_id": r.code, "name": r.label_id}
        else:
            item = {"code": r.code, "label_id": r.label_id, "label_en": r.label_en}
        lists.setdefault(r.kind, []).append(item)
    districts = [District.model_validate(d) for d in lists.pop("districts", [])]
    info = CityInfo(
        city_id=city.city_id,
        name=city.name,
        province=city.province,
        timezone=city.tz.key,
        bin_full_threshold=float(city.bin_full_threshold),
    )
    # Each list's codes are checked against the domain vocabulary as the answer is built.
    return MetaAnswer.model_validate(
        {"city": info, **{name: lists.get(name, []) for name in LISTS}, "districts": districts}
    )


# A caller limited to some cities sees only those; an empty list of limits means every city.
CITIES = """
SELECT city_id, name, province, timezone, bin_full_threshold FROM city
WHERE cardinality(%(limits)s::text[]) = 0 OR city_id = ANY(%(limits)s::text[])
ORDER BY name, city_id
"""


@router.get("/cities", summary="The cities of the deployment the caller may see, with names")
async def get_cities(conn: Conn, key: ViewerKey, settings: SettingsDep) -> CitiesAnswer:
    """Every city the caller's limits admit (a dashboard's city switcher offers these)."""
    rows = await fetch_all(conn, CityRow, CITIES, {"limits": list(key.cities)})
    cities = [
        CityInfo(
            city_id=r.city_id,
            name=r.name,
            province=r.province,
            timezone=r.timezone,
            bin_full_threshold=float(r.bin_full_threshold),
        )
        for r in rows
    ]
    ids = [c.city_id for c in cities]
    default = settings.PISMAN_CITY if settings.PISMAN_CITY in ids else (ids[0] if ids else None)
    return CitiesAnswer(cities=cities, default_city_id=default)
