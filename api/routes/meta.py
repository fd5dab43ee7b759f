"""GET /v1/meta: labels for the UI in both languages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CityDep, Conn, LightLane, ViewerKey

router = APIRouter(prefix="/v1", tags=["meta"], dependencies=[LightLane])

# One statement for every list: each round trip is a wait for the database, and under load
# the waits, not the work, make up a request's time.
LABELS = """
SELECT 'categories', code, label_id, label_en, code FROM category
UNION ALL SELECT 'materials', code, label_id, label_en, code FROM material
UNION ALL SELECT 'streams', code, label_id, label_en, code FROM stream
UNION ALL SELECT 'site_types', code, label_id, label_en, code FROM site_type
UNION ALL SELECT 'device_kinds', code, label_id, label_en, code FROM device_kind
UNION ALL SELECT 'target_metrics', code, label_id, label_en, code FROM target_metric
UNION ALL SELECT 'districts', district_id, name, NULL, name FROM district WHERE city_id = %s
ORDER BY 1, 5, 2
"""
LISTS = ("categories", "materials", "streams", "site_types", "device_kinds", "target_metrics")


@router.get("/meta", summary="Labels (Indonesian and English) and the city's districts")
async def get_meta(conn: Conn, key: ViewerKey, city: CityDep) -> dict[str, Any]:
    """Vocabulary for the UI: categories, materials, streams, site types, districts."""
    out: dict[str, Any] = {
        "city": {
            "city_id": city.city_id,
            "name": city.name,
            "province": city.province,
            "timezone": city.tz.key,
            "bin_full_threshold": float(city.bin_full_threshold),
        },
        **{name: [] for name in LISTS},
        "districts": [],
    }
    for kind, code, label_id, label_en, _sort_key in await (
        await conn.execute(LABELS, (city.city_id,))
    ).fetchall():
        if kind == "districts":
            out["districts"].append({"district_id": code, "name": label_id})
        else:
            out[kind].append({"code": code, "label_id": label_id, "label_en": label_en})
    return out
