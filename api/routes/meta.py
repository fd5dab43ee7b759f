"""GET /v1/meta: labels for the UI in both languages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CityDep, Conn, LightLane, ViewerKey

router = APIRouter(prefix="/v1", tags=["meta"], dependencies=[LightLane])

LABELS = {
    "categories": "SELECT code, label_id, label_en FROM category ORDER BY code",
    "materials": "SELECT code, label_id, label_en FROM material ORDER BY code",
    "streams": "SELECT code, label_id, label_en FROM stream ORDER BY code",
    "site_types": "SELECT code, label_id, label_en FROM site_type ORDER BY code",
    "device_kinds": "SELECT code, label_id, label_en FROM device_kind ORDER BY code",
    "target_metrics": "SELECT code, label_id, label_en FROM target_metric ORDER BY code",
}
DISTRICTS = "SELECT district_id, name FROM district WHERE city_id = %s ORDER BY name"


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
    }
    for name, statement in LABELS.items():
        rows = await (await conn.execute(statement)).fetchall()
        out[name] = [{"code": r[0], "label_id": r[1], "label_en": r[2]} for r in rows]
    rows = await (await conn.execute(DISTRICTS, (city.city_id,))).fetchall()
    out["districts"] = [{"district_id": r[0], "name": r[1]} for r in rows]
    return out
