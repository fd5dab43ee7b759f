"""GET /v1/alerts: full bins, fires, silent devices, low batteries, organic waste at the landfill."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CityDep, Conn, ViewerKey
from api.params import ID_PATTERN, local_midnight
from api.queries.tonnage import TonnageQuery, as_tonnes, tonnage
from api.routes.bins import list_bin_items
from api.routes.devices import list_device_items

router = APIRouter(prefix="/v1", tags=["alerts"])
LOW_BATTERY_PCT = 20
CRITICAL_BATTERY_PCT = 5
ORGANIC_MATERIALS = "SELECT array_agg(code) FROM material WHERE organic"


@router.get("/alerts", summary="What needs attention now")
async def get_alerts(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> list[dict[str, Any]]:
    """Alerts, most severe first: fire, full bins, silent devices, low battery, organic at landfill."""
    alerts: list[dict[str, Any]] = []

    def add(
        kind: str, severity: str, item: dict[str, Any], msg_id: str, msg_en: str, since: str | None
    ) -> None:
        alerts.append(
            {
                "kind": kind,
                "severity": severity,
                "device_id": item.get("device_id"),
                "site_id": item.get("site_id"),
                "district_id": item.get("district_id"),
                "message_id": msg_id,
                "message_en": msg_en,
                "since": since,
            }
        )

    for b in await list_bin_items(conn, city_id=city.city_id, tz=city.tz, district=district):
        if b["fire"]:
            add(
                "fire",
                "critical",
                b,
                f"Api terdeteksi di {b['site_name']}",
                f"Fire detected at {b['site_name']}",
                b["reading_ts"],
            )
        if b["needs_collection"]:
            add(
                "bin_full",
                "warning",
                b,
                f"Kontainer {b['device_id']} terisi {b['fill_pct']}% — perlu diangkut",
                f"Bin {b['device_id']} is {b['fill_pct']}% full — needs collection",
                b["reading_ts"],
            )
    for d in await list_device_items(conn, city_id=city.city_id, tz=city.tz, district=district):
        if d["status"] == "offline":
            add(
                "device_silent",
                "warning",
                d,
                f"Perangkat {d['device_id']} tidak mengirim data sejak {d['last_seen_at']}",
                f"Device {d['device_id']} silent since {d['last_seen_at']}",
                d["last_seen_at"],
            )
        battery = d["battery_pct"]
        if battery is not None and battery < LOW_BATTERY_PCT:
            add(
                "low_battery",
                "critical" if battery < CRITICAL_BATTERY_PCT else "info",
                d,
                f"Baterai {d['device_id']} tinggal {battery:.0f}%",
                f"Battery of {d['device_id']} at {battery:.0f}%",
                d["last_seen_at"],
            )

    today = datetime.now(city.tz).date()
    landfill = await tonnage(
        conn,
        TonnageQuery(
            city.city_id,
            city.tz,
            local_midnight(today, city.tz),
            local_midnight(today + timedelta(days=1), city.tz),
            "total",
            ("category", "site", "district", "material"),
            measures=("fate",),
            site_types=("landfill",),
        ),
    )
    organic = set((await (await conn.execute(ORGANIC_MATERIALS)).fetchone() or [[]])[0] or [])
    per_site: dict[tuple[str, str], Decimal] = {}
    for r in landfill.rows:
        wanted = district is None or r.groups["district"] == district
        if wanted and r.groups["category"] == "residual" and r.groups["material"] in organic:
            k = (str(r.groups["site"]), str(r.groups["district"]))
            per_site[k] = per_site.get(k, Decimal(0)) + r.kg
    for (site_id, district_id), kg in per_site.items():
        t = as_tonnes(kg)
        add(
            "organic_at_landfill",
            "critical",
            {"site_id": site_id, "district_id": district_id},
            f"{t} t sampah organik masuk TPA hari ini",
            f"{t} t of organic waste reached the landfill today",
            local_midnight(today, city.tz).isoformat(),
        )
    rank = {"critical": 0, "warning": 1, "info": 2}
    alerts.sort(
        key=lambda a: (rank[a["severity"]], a["kind"], a["device_id"] or a["site_id"] or "")
    )
    return alerts
