"""The planners' monthly and annual reports: national summary (A–E) with coverage, landfill,
facilities, waste banks, data quality.

Every tonne comes from api.queries.tonnage (the one way out for each number). The coverage rule
(docs/national-report.md): A is the generation target over the days that sent data, so shares
compare like with like; the whole month's A is a separate, labelled estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.params import local_midnight, next_month
from api.queries.device_status import DEVICE_STATUS
from api.queries.targets import targets_on
from api.queries.tonnage import TonnageQuery, TonnageResult, as_tonnes, tonnage
from pisman.domain import DeviceStatus

RECYCLING_TERMS = "SELECT code, recycling_term FROM process_kind"
QUARANTINED = """
SELECT status, count(*) FROM quarantine
WHERE city_id = %(city)s AND received_at >= %(start)s AND received_at < %(end)s
GROUP BY status ORDER BY status
"""
SILENT_SCALES = f"""
SELECT d.device_id, d.site_id, ds.last_seen_at
FROM device d LEFT JOIN device_state ds ON ds.device_id = d.device_id
WHERE d.city_id = %(city)s AND d.active AND d.kind IN ('weighbridge', 'platform_scale')
  AND {DEVICE_STATUS} <> '{DeviceStatus.ONLINE.value}'
ORDER BY d.device_id
"""
# Days with data: local days on which any weighing of the city was stored (the city grain's
# rows are local days, sql/025_tonnage_grain.sql).
COVERED_DAYS = """
SELECT DISTINCT (bucket AT TIME ZONE %(tz)s)::date AS day FROM tonnage_daily_city
WHERE city_id = %(city)s AND bucket >= %(start)s AND bucket < %(end)s
ORDER BY day
"""
# Each active scale's days with data in the ended part of the month: its site's day masks in
# the site-month grain (bit d-1: data on day d), cut to the ended days.
SCALE_DAYS = """
SELECT d.device_id, d.site_id,
       coalesce(bit_count((bit_or(w.days_mask) & %(ended_mask)s::int)::bit(32)), 0)::int
FROM device d
LEFT JOIN tonnage_monthly_site w
  ON w.city_id = d.city_id AND w.bucket = %(start)s AND w.site_id = d.site_id
WHERE d.city_id = %(city)s AND d.active AND d.kind IN ('weighbridge', 'platform_scale')
GROUP BY d.device_id, d.site_id
ORDER BY d.device_id
"""
WASTE_BANK_TYPES = ("waste_bank", "waste_bank_hub")
# Coverage status of a month, from the days that sent data (docs/national-report.md).
STATUSES = ("complete", "partial", "in_progress", "future", "no_data")
# National terms kept exact (kg) for sums over months; rounded only when shown.
# Sums of the report's sections, exact (kg), for totals rows over months.
SECTION_SUMS = (
    "facility_in",
    "facility_processed",
    "facility_output",
    "facility_residue",
    "bank_kg",
)
EXACT_TERMS = ("A", "A_month", "measured", "B", "C", "D", "E", "reduce", "utilize", "residual")


def _ratio(num: Decimal, den: Decimal | None) -> float | None:
    return None if not den else round(float(num / den), 4)


async def year_reports(
    conn: psycopg.AsyncConnection,
    *,
    city_id: str,
    tz: ZoneInfo,
    year: int,
    today: date | None = None,
) -> list[MonthReport]:
    """The twelve months of a year (months not begun are empty, never unmanaged)."""
    today = today or local_today(tz)
    out = []
    for m in range(1, 13):
        first = date(year, m, 1)
        out.append(await month_report(conn, city_id=city_id, tz=tz, first=first, today=today))
    return out


@dataclass(slots=True)
class MonthReport:
    """One month's report sections, JSON-ready (tonnes rounded at output)."""

    month: str
    national: dict[str, Any]
    landfill: list[dict[str, Any]] = field(default_factory=list)
    facilities: list[dict[str, Any]] = field(default_factory=list)
    waste_banks: list[dict[str, Any]] = field(default_factory=list)
    data_quality: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)
    exact_kg: dict[str, Decimal | None] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The JSON sections (exact sums left out)."""
        return {
            "month": self.month,
            "national": self.national,
            "coverage": self.coverage,
            "landfill": self.landfill,
            "facilities": self.facilities,
            "waste_banks": self.waste_banks,
            "data_quality": self.data_quality,
        }


def month_status(first: date, today: date, days_in_month: int, days_with_data: int) -> str:
    """complete, partial, in_progress (today is in the month), future, or no_data."""
    end = next_month(first)
    if first > today:
        return "future"
    if today < end:
        return "in_progress"
    if days_with_data == 0:
        return "no_data"
    return "complete" if days_with_data >= days_in_month else "partial"


def national_terms(
    exact: dict[str, Decimal | None], *, days: int, days_with_data: int
) -> dict[str, Any]:
    """A–E, shares and the unmanaged rest from exact kilograms; A covers the days with data."""
    a_kg = exact.get("A")
    b_kg, c_kg = exact["B"] or Decimal(0), exact["C"] or Decimal(0)
    d_kg, e_kg = exact["D"] or Decimal(0), exact["E"] or Decimal(0)
    managed_kg = b_kg + c_kg
    a_month = exact.get("A_month")
    out = {
        "days": days,
        "days_with_data": days_with_data,
        "A_t": as_tonnes(a_kg) if a_kg is not None else None,
        "A_basis": "estimate: generation target × days with data",
        "A_month_estimate_t": as_tonnes(a_month) if a_month is not None else None,
        "A_month_basis": "estimate: generation target × every day of the period",
        "A_measured_t": as_tonnes(exact["measured"] or Decimal(0)),
        "B_t": as_tonnes(b_kg),
        "B_share": _ratio(b_kg, a_kg),
        "C_t": as_tonnes(c_kg),
        "C_share": _ratio(c_kg, a_kg),
        "managed_t": as_tonnes(managed_kg),
        "managed_share": _ratio(managed_kg, a_kg),
        "unmanaged_t": as_tonnes(a_kg - managed_kg) if a_kg else None,
        "D_t": as_tonnes(d_kg),
        "E_t": as_tonnes(e_kg),
        "recycling_rate": _ratio(d_kg + e_kg, a_kg),
        "reduce_t": as_tonnes(exact["reduce"] or Decimal(0)),
        "utilize_t": as_tonnes(exact["utilize"] or Decimal(0)),
        "residual_t": as_tonnes(exact["residual"] or Decimal(0)),
    }
    if days_with_data == 0:  # nothing measured: empty, never zero (and never 100 % unmanaged)
        for key in ("A_measured_t", "B_t", "C_t", "managed_t", "D_t", "E_t"):
            out[key] = None
        for key in ("reduce_t", "utilize_t", "residual_t"):
            out[key] = None
    return out


def summarize(reports: list[MonthReport], label: str) -> dict[str, Any]:
    """The national terms over several months: exact sums, then shares over the covered A."""
    exact: dict[str, Decimal | None] = {}
    for term in EXACT_TERMS:
        values = [m.exact_kg.get(term) for m in reports]
        present = [v for v in values if v is not None]
        exact[term] = sum(present, Decimal(0)) if present else None
    days = sum(m.coverage["days_in_month"] for m in reports)
    covered = sum(m.coverage["days_with_data"] for m in reports)
    out = {"period": label, **national_terms(exact, days=days, days_with_data=covered)}
    counts = {s: sum(m.coverage["status"] == s for m in reports) for s in STATUSES}
    out["months_by_status"] = counts
    out["partial"] = covered < days
    return out


@dataclass(frozen=True)
class _Month:
    """One month of one city: what every step of month_report asks its tonnage for."""

    conn: psycopg.AsyncConnection
    city_id: str
    tz: ZoneInfo
    first: date
    end: date  # the first day of the next month

    @property
    def label(self) -> str:
        return self.first.strftime("%Y-%m")

    @property
    def days(self) -> int:
        return (self.end - self.first).days

    async def tonnage(
        self,
        group_by: tuple[str, ...],
        measures: tuple[Any, ...],
        site_types: tuple[str, ...] | None = None,
    ) -> TonnageResult:
        """The month's total tonnage by group_by (api.queries.tonnage, the one way out)."""
        return await tonnage(
            self.conn,
            TonnageQuery(
                self.city_id,
                self.tz,
                local_midnight(self.first, self.tz),
                local_midnight(self.end, self.tz),
                "total",
                group_by,
                measures=measures,
                site_types=site_types,
            ),
        )


async def coverage_of(
    conn: psycopg.AsyncConnection, *, city_id: str, tz: ZoneInfo, first: date, today: date
) -> dict[str, Any]:
    """Days with data, days without, silent scales and the month's status."""
    end = next_month(first)
    days = (end - first).days
    elapsed_end = min(end, today + timedelta(days=1))
    elapsed = max(0, (elapsed_end - first).days)
    # Days missing and scales silent are judged over ended days: today may still send data.
    ended = max(0, (min(end, today) - first).days)
    params = {
        "city": city_id,
        "tz": tz.key,
        "start": local_midnight(first, tz),
        "end": local_midnight(end, tz),
    }
    covered = [r[0] for r in await (await conn.execute(COVERED_DAYS, params)).fetchall()]
    covered_set = set(covered)
    missing = [
        (first + timedelta(days=i)).isoformat()
        for i in range(ended)
        if first + timedelta(days=i) not in covered_set
    ]
    silent: list[dict[str, Any]] = []
    if ended:
        scale_params = {**params, "ended_mask": (1 << ended) - 1}
        for device, site, n in await (await conn.execute(SCALE_DAYS, scale_params)).fetchall():
            if n < ended:
                silent.append(
                    {
                        "device": device,
                        "site": site,
                        "days_with_data": n,
                        "days_silent": ended - n,
                    }
                )
    status = month_status(first, today, days, len(covered))
    return {
        "month": first.strftime("%Y-%m"),
        "status": status,
        "days_in_month": days,
        "days_elapsed": elapsed,
        "days_with_data": len(covered),
        "days_without_data": missing,
        "partial": len(covered) < days,
        "in_progress": status == "in_progress",
        "scales_silent_some_days": silent,
    }


def future_month(first: date) -> MonthReport:
    """A month that has not begun: nothing measured, nothing estimated, nothing unmanaged."""
    days = (next_month(first) - first).days
    month = first.strftime("%Y-%m")
    coverage: dict[str, Any] = {
        "month": month,
        "status": "future",
        "days_in_month": days,
        "days_elapsed": 0,
        "days_with_data": 0,
        "days_without_data": [],
        "partial": True,
        "in_progress": False,
        "scales_silent_some_days": [],
    }
    exact: dict[str, Decimal | None] = {t: None for t in EXACT_TERMS}
    national = {
        "month": month,
        "status": "future",
        **national_terms(exact, days=days, days_with_data=0),
        "targets": {"B_share": None, "C_share": None},
    }
    return MonthReport(
        month,
        national,
        data_quality={
            "month": coverage["month"],
            "weighings": 0,
            "manual_tickets": 0,
            "manual_share": None,
            "silent_scales_now": 0,
            "silent_scale_ids": [],
            "quarantined": 0,
            "quarantined_by_status": {},
            "generation_is_estimate": True,
        },
        coverage=coverage,
        exact_kg=exact,
    )


def local_today(tz: ZoneInfo) -> date:
    """Today in the city's zone (which month is in progress)."""
    return datetime.now(tz).date()


async def month_report(
    conn: psycopg.AsyncConnection,
    *,
    city_id: str,
    tz: ZoneInfo,
    first: date,
    today: date | None = None,
) -> MonthReport:
    """The report for the month starting at `first` (`today` decides which month is in progress)."""
    today = today or local_today(tz)
    if first > today:
        return future_month(first)
    month = _Month(conn, city_id, tz, first, next_month(first))
    coverage = await coverage_of(conn, city_id=city_id, tz=tz, first=first, today=today)
    targets = await targets_on(conn, city_id=city_id, day=first)
    national, exact = await _national_section(month, coverage, targets)
    report = MonthReport(month.label, national, coverage=coverage, exact_kg=exact)
    report.landfill, landfill_kg = await _landfill_section(month, targets)
    report.facilities, sections = await _facility_section(month)
    report.waste_banks, sections["bank_kg"] = await _waste_bank_section(month)
    report.exact_kg.update(sections, landfill_net=landfill_kg)
    report.data_quality = await _data_quality_section(month)
    return report


async def _national_section(
    month: _Month, coverage: dict[str, Any], targets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Decimal | None]]:
    """The national terms A–E with their targets, and the exact kg behind them."""
    terms: dict[str, str] = dict(await (await month.conn.execute(RECYCLING_TERMS)).fetchall())
    fates = await month.tonnage(
        ("category", "national_term", "site_type", "process_kind"), ("fate",)
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
    covered = coverage["days_with_data"]
    exact: dict[str, Decimal | None] = {
        "A": gen.for_days(covered) * 1000 if gen and covered else None,
        "A_month": gen.for_days(month.days) * 1000 if gen else None,
        "measured": sum(by_cat.values(), zero),
        "B": b_kg,
        "C": c_kg,
        "D": d_kg,
        "E": e_kg,
        **by_cat,
    }
    national = {
        "month": month.label,
        "status": coverage["status"],
        **national_terms(exact, days=month.days, days_with_data=covered),
        "targets": {
            "B_share": float(t.value) if (t := targets.get("reduction_share")) else None,
            "C_share": float(t.value) if (t := targets.get("handling_share")) else None,
        },
    }
    return national, exact


async def _landfill_section(
    month: _Month, targets: dict[str, Any]
) -> tuple[list[dict[str, Any]], Decimal]:
    """Residual delivered to each landfill (trips, tonnes, share of the quota); the total kg."""
    landfill = await month.tonnage(("category", "site"), ("fate",), ("landfill",))
    quota = targets.get("landfill_quota_t")
    quota_kg = quota.for_days(month.days) * 1000 if quota else None
    landfill_kg = Decimal(0)
    rows = []
    for r in landfill.rows:
        if r.groups["category"] != "residual":
            continue
        landfill_kg += r.kg
        rows.append(
            {
                "month": month.label,
                "site": r.groups["site"],
                "site_name": r.groups["site_name"],
                "trips": r.weighings,
                "net_t": as_tonnes(r.kg),
                "t_per_trip": as_tonnes(r.kg / r.weighings) if r.weighings else None,
                "quota_t": as_tonnes(quota_kg) if quota_kg is not None else None,
                "quota_used_share": _ratio(r.kg, quota_kg),
            }
        )
    return rows, landfill_kg


async def _facility_section(month: _Month) -> tuple[list[dict[str, Any]], dict[str, Decimal]]:
    """Each processing facility's input, processed, output and residue; their exact sums."""
    facilities = await month.tonnage(("site", "stream"), ("all",), ("processing",))
    per_site: dict[tuple[str, str], dict[str, Decimal]] = {}
    for r in facilities.rows:
        k = (str(r.groups["site"]), str(r.groups["site_name"]))
        per_site.setdefault(k, {})[str(r.groups["stream"])] = r.kg
    # processed = input less residue (what the default rules count as utilize at the facility);
    # processed_output = the product as weighed leaving the facility, 0 where its scale never
    # weighs output (the simulator's facilities weigh only input and residue).
    zero = Decimal(0)
    sections = dict.fromkeys(SECTION_SUMS, zero)
    rows = []
    for (site, name), streams in sorted(per_site.items()):
        in_kg = streams.get("to_processing", zero)
        residue_kg = streams.get("to_landfill", zero)
        output_kg = streams.get("processed_output", zero)
        sections["facility_in"] += in_kg
        sections["facility_processed"] += in_kg - residue_kg
        sections["facility_output"] += output_kg
        sections["facility_residue"] += residue_kg
        rows.append(
            {
                "month": month.label,
                "site": site,
                "site_name": name,
                "in_t": as_tonnes(in_kg),
                "processed_t": as_tonnes(in_kg - residue_kg),
                "processed_output_t": as_tonnes(output_kg),
                "residue_t": as_tonnes(residue_kg),
            }
        )
    return rows, sections


async def _waste_bank_section(month: _Month) -> tuple[list[dict[str, Any]], Decimal]:
    """What the waste banks took in, by material (kg, rupiah paid, deposits); the total kg."""
    banks = await month.tonnage(("category", "material"), ("fate",), WASTE_BANK_TYPES)
    zero = Decimal(0)
    bank_kg = zero
    rows = []
    for r in banks.rows:
        if r.groups["category"] == "reduce":
            bank_kg += r.kg
            rows.append(
                {
                    "month": month.label,
                    "material": r.groups["material"],
                    "kg": float(r.kg.quantize(Decimal("0.001"))),
                    "amount_rp": float((r.amount_rp or zero).quantize(Decimal("1"))),
                    "deposits": r.weighings,
                }
            )
    return rows, bank_kg


async def _data_quality_section(month: _Month) -> dict[str, Any]:
    """Weighings, manual tickets, silent scales now and quarantined messages in the month."""
    everything = await month.tonnage((), ("all",))
    params = {
        "city": month.city_id,
        "start": local_midnight(month.first, month.tz),
        "end": local_midnight(month.end, month.tz),
    }
    conn = month.conn
    quarantined: dict[str, int] = dict(await (await conn.execute(QUARANTINED, params)).fetchall())
    silent = await (await conn.execute(SILENT_SCALES, params)).fetchall()
    weighings = sum(r.weighings for r in everything.rows)
    manual = sum(r.manual_weighings for r in everything.rows)
    return {
        "month": month.label,
        "weighings": weighings,
        "manual_tickets": manual,
        "manual_share": round(manual / weighings, 4) if weighings else None,
        "silent_scales_now": len(silent),
        "silent_scale_ids": [s[0] for s in silent],
        "quarantined": int(sum(quarantined.values())),
        "quarantined_by_status": {k: int(v) for k, v in quarantined.items()},
        "generation_is_estimate": True,
    }
