"""The planners' monthly report: national summary (A–E), landfill, facilities, waste banks, data quality.

Every tonne comes from api.queries.tonnage (the one way out for each number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.params import local_midnight, next_month
from api.queries.targets import targets_on
from api.queries.tonnage import TonnageQuery, TonnageResult, as_tonnes, tonnage
from pisman.domain import SILENT_INTERVALS

RECYCLING_TERMS = "SELECT code, recycling_term FROM process_kind"
QUARANTINED = """
SELECT status, count(*) FROM quarantine
WHERE city_id = %(city)s AND received_at >= %(start)s AND received_at < %(end)s
GROUP BY status ORDER BY status
"""
SILENT_SCALES = """
SELECT d.device_id, d.site_id, ds.last_seen_at
FROM device d LEFT JOIN device_state ds ON ds.device_id = d.device_id
WHERE d.city_id = %(city)s AND d.active AND d.kind IN ('weighbridge', 'platform_scale')
  AND (ds.last_seen_at IS NULL OR ds.connection = 'offline'
       OR ds.last_seen_at < now() - make_interval(secs => %(silent)s * d.reporting_interval_s))
ORDER BY d.device_id
"""
WASTE_BANK_TYPES = ("waste_bank", "waste_bank_hub")


def _ratio(num: Decimal, den: Decimal | None) -> float | None:
    return None if not den else round(float(num / den), 4)


@dataclass(slots=True)
class MonthReport:
    """One month's report sections, JSON-ready (tonnes rounded at output)."""

    month: str
    national: dict[str, Any]
    landfill: list[dict[str, Any]] = field(default_factory=list)
    facilities: list[dict[str, Any]] = field(default_factory=list)
    waste_banks: list[dict[str, Any]] = field(default_factory=list)
    data_quality: dict[str, Any] = field(default_factory=dict)


async def _q(
    conn: psycopg.AsyncConnection,
    city_id: str,
    tz: ZoneInfo,
    first: date,
    end: date,
    group_by: tuple[str, ...],
    measures: tuple[Any, ...],
    site_types: tuple[str, ...] | None = None,
) -> TonnageResult:
    return await tonnage(
        conn,
        TonnageQuery(
            city_id,
            tz,
            local_midnight(first, tz),
            local_midnight(end, tz),
            "total",
            group_by,
            measures=measures,
            site_types=site_types,
        ),
    )


async def month_report(
    conn: psycopg.AsyncConnection, *, city_id: str, tz: ZoneInfo, first: date
) -> MonthReport:
    """The report for the month starting at `first`."""
    end = next_month(first)
    days = (end - first).days
    targets = await targets_on(conn, city_id=city_id, day=first)
    terms: dict[str, str] = dict(await (await conn.execute(RECYCLING_TERMS)).fetchall())

    fates = await _q(
        conn,
        city_id,
        tz,
        first,
        end,
        ("category", "national_term", "site_type", "process_kind"),
        ("fate",),
    )
    zero = Decimal(0)
    by_cat = {c: fates.total_kg(category=c) for c in ("reduce", "utilize", "residual")}
    b_kg = sum((r.kg for r in fates.rows if r.groups["national_term"] == "B"), zero)
    c_kg = sum((r.kg for r in fates.rows if r.groups["national_term"] == "C"), zero)
    d_kg = sum(
        (
            r.kg
            for r in fates.rows
            if (r.groups["category"] == "reduce" and r.groups["site_type"] in WASTE_BANK_TYPES)
            or (
                r.groups["category"] == "utilize"
                and terms.get(r.groups["process_kind"] or "") == "D"
            )
        ),
        zero,
    )
    e_kg = sum(
        (
            r.kg
            for r in fates.rows
            if r.groups["category"] == "utilize"
            and terms.get(r.groups["process_kind"] or "") == "E"
        ),
        zero,
    )
    gen = targets.get("generation_t")
    a_t = gen.for_days(days) if gen else None
    measured_kg = sum(by_cat.values(), zero)
    managed_kg = b_kg + c_kg
    national = {
        "month": first.strftime("%Y-%m"),
        "days": days,
        "A_t": float(a_t.quantize(Decimal("0.001"))) if a_t is not None else None,
        "A_basis": "estimate (generation target × days)",
        "A_measured_t": as_tonnes(measured_kg),
        "B_t": as_tonnes(b_kg),
        "B_share": _ratio(b_kg / 1000, a_t),
        "C_t": as_tonnes(c_kg),
        "C_share": _ratio(c_kg / 1000, a_t),
        "managed_t": as_tonnes(managed_kg),
        "managed_share": _ratio(managed_kg / 1000, a_t),
        "unmanaged_t": as_tonnes(a_t * 1000 - managed_kg) if a_t is not None else None,
        "D_t": as_tonnes(d_kg),
        "E_t": as_tonnes(e_kg),
        "recycling_rate": _ratio((d_kg + e_kg) / 1000, a_t),
        "reduce_t": as_tonnes(by_cat["reduce"]),
        "utilize_t": as_tonnes(by_cat["utilize"]),
        "residual_t": as_tonnes(by_cat["residual"]),
        "targets": {
            "B_share": float(t.value) if (t := targets.get("reduction_share")) else None,
            "C_share": float(t.value) if (t := targets.get("handling_share")) else None,
        },
    }
    report = MonthReport(first.strftime("%Y-%m"), national)

    landfill = await _q(
        conn, city_id, tz, first, end, ("category", "site"), ("fate",), ("landfill",)
    )
    quota = targets.get("landfill_quota_t")
    quota_kg = quota.for_days(days) * 1000 if quota else None
    for r in landfill.rows:
        if r.groups["category"] != "residual":
            continue
        report.landfill.append(
            {
                "month": report.month,
                "site": r.groups["site"],
                "site_name": r.groups["site_name"],
                "trips": r.weighings,
                "net_t": as_tonnes(r.kg),
                "t_per_trip": as_tonnes(r.kg / r.weighings) if r.weighings else None,
                "quota_t": as_tonnes(quota_kg) if quota_kg is not None else None,
                "quota_used_share": _ratio(r.kg, quota_kg),
            }
        )

    facilities = await _q(
        conn, city_id, tz, first, end, ("site", "stream"), ("all",), ("processing",)
    )
    per_site: dict[tuple[str, str], dict[str, Decimal]] = {}
    for r in facilities.rows:
        k = (str(r.groups["site"]), str(r.groups["site_name"]))
        per_site.setdefault(k, {})[str(r.groups["stream"])] = r.kg
    for (site, name), streams in sorted(per_site.items()):
        report.facilities.append(
            {
                "month": report.month,
                "site": site,
                "site_name": name,
                "in_t": as_tonnes(streams.get("to_processing", zero)),
                "processed_output_t": as_tonnes(streams.get("processed_output", zero)),
                "residue_t": as_tonnes(streams.get("to_landfill", zero)),
            }
        )

    banks = await _q(
        conn, city_id, tz, first, end, ("category", "material"), ("fate",), WASTE_BANK_TYPES
    )
    for r in banks.rows:
        if r.groups["category"] == "reduce":
            report.waste_banks.append(
                {
                    "month": report.month,
                    "material": r.groups["material"],
                    "kg": float(r.kg.quantize(Decimal("0.001"))),
                    "amount_rp": float((r.amount_rp or zero).quantize(Decimal("1"))),
                    "deposits": r.weighings,
                }
            )

    everything = await _q(conn, city_id, tz, first, end, (), ("all",))
    params = {
        "city": city_id,
        "start": local_midnight(first, tz),
        "end": local_midnight(end, tz),
        "silent": SILENT_INTERVALS,
    }
    quarantined: dict[str, int] = dict(await (await conn.execute(QUARANTINED, params)).fetchall())
    silent = await (await conn.execute(SILENT_SCALES, params)).fetchall()
    weighings = sum(r.weighings for r in everything.rows)
    manual = sum(r.manual_weighings for r in everything.rows)
    report.data_quality = {
        "month": report.month,
        "weighings": weighings,
        "manual_tickets": manual,
        "manual_share": round(manual / weighings, 4) if weighings else None,
        "silent_scales_now": len(silent),
        "silent_scale_ids": [s[0] for s in silent],
        "quarantined": int(sum(quarantined.values())),
        "quarantined_by_status": {k: int(v) for k, v in quarantined.items()},
        "generation_is_estimate": True,
    }
    return report
