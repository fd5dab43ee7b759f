"""The API's answers as pydantic models: the routes declare them, the dashboard decodes into them.

The OpenAPI schema the API serves is built from these models, so it is the contract; what the
numbers mean is in docs/api-contract.md. Field names and values are what the API has always
served: a model describes an answer, it never renames one.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from pisman.domain import (
    AlertKind,
    Category,
    CoverageStatus,
    DeviceKind,
    DeviceStatus,
    Material,
    ProcessKind,
    QuarantineStatus,
    Role,
    Severity,
    SiteType,
    Stream,
    TargetMetric,
)

# Times are ISO-8601 strings with the city's offset, as the API has always written them.
Timestamp = Annotated[
    str,
    Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-01T00:00:00+07:00"]),
]
LocalDate = Annotated[str, Field(json_schema_extra={"format": "date"}, examples=["2026-11-01"])]
Month = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", examples=["2026-10"])]
Tonnes = Annotated[float, Field(description="Tonnes, rounded to 3 decimals.")]
Share = Annotated[float, Field(description="A ratio 0–1 (shown as %).")]


class Answer(BaseModel):
    """Base of every answer: immutable; `from` and other reserved words travel under an alias."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)


class ErrorAnswer(Answer):
    """Every 4xx and 503: one line saying what is wrong or what to do."""

    detail: str = Field(examples=["'from' must be a date YYYY-MM-DD or an ISO-8601 datetime"])


# --- /v1/tonnage ---------------------------------------------------------------------------


class TonnageTotal(Answer):
    """Tonnes of one group over the whole range; only the asked-for group columns are present."""

    category: Category | None = None
    district: str | None = None
    district_name: str | None = None
    site: str | None = None
    site_name: str | None = None
    site_type: SiteType | None = None
    material: Material | None = None
    tonnes: Tonnes


class TonnageRow(TonnageTotal):
    """Tonnes of one bucket and group."""

    bucket_start: Timestamp


class TonnageAnswer(Answer):
    """GET /v1/tonnage: the query echoed, rows, per-group totals and the fate total."""

    city: str
    timezone: str
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    bucket: str = Field(examples=["day"])
    group_by: list[str]
    unit: str = Field(examples=["t"])
    rows: list[TonnageRow]
    totals: list[TonnageTotal]
    total_tonnes: Tonnes


# --- /v1/progress --------------------------------------------------------------------------


class FateFigure(Answer):
    """A fate's tonnes for a period against its target and the generation target."""

    tonnes: Tonnes
    target_t: Tonnes | None
    share_of_generation: Share | None


class SeparateFigure(Answer):
    """Tonnage arriving separated, as a share of all collected tonnage, against its target."""

    tonnes: Tonnes
    share_of_collected: Share | None
    target_share: Share | None


class PeriodCategories(Answer):
    """The three fates and `separate` (which overlaps them)."""

    reduce: FateFigure
    utilize: FateFigure
    residual: FateFigure
    separate: SeparateFigure


class PeriodFigures(Answer):
    """A period's categories, collected, diverted (reduce + utilize) and landfilled shares."""

    categories: PeriodCategories
    collected_t: Tonnes
    diverted_t: Tonnes
    diverted_share: Share | None
    landfilled_share: Share | None


class Projection(Answer):
    """Month to date scaled to the whole month."""

    days_in_month: int
    reduce: Tonnes
    utilize: Tonnes
    residual: Tonnes
    separate: Tonnes


class MonthToDate(PeriodFigures):
    """The month up to and including the day."""

    from_: LocalDate = Field(alias="from")
    to: LocalDate
    days: int
    projection: Projection


class TrendDay(Answer):
    """One day of the trend."""

    date: LocalDate
    reduce: Tonnes
    utilize: Tonnes
    residual: Tonnes
    separate: Tonnes


class LandfillQuota(Answer):
    """The rolling landfill quota window ending with the day."""

    quota_t: Tonnes | None
    period_days: int
    window_start: LocalDate
    window_end: LocalDate
    used_t: Tonnes
    remaining_t: Tonnes
    used_share: Share | None


class Kbs(Answer):
    """Waste-free neighbourhoods (Kawasan Bebas Sampah) against the target."""

    count: int
    target: int | None


PaceBasis = Literal["history", "city_profile", "none", "day_over", "day_not_begun"]


class PaceFigure(Answer):
    """One measure of the day so far against the part of its daily target expected by `at`."""

    so_far_t: Tonnes
    day_target_t: Tonnes | None = Field(description="The whole day's target (or ceiling).")
    expected_share: Share | None = Field(
        description="Share of a day's tonnage of this measure normally weighed by `at`."
    )
    expected_t: Tonnes | None = Field(description="day_target_t × expected_share.")
    basis: PaceBasis = Field(
        description="history: the same weekday of the last 4 weeks; city_profile: the city "
        "file's declared hourly profile (history too short); none: neither; day_over / "
        "day_not_begun: a past day expects its whole target, a future one nothing."
    )
    history_days: int = Field(description="Days of the 4 in the history with this measure.")
    ceiling: bool = Field(description="True when the target is an upper bound (residual).")
    over_ceiling: bool | None = Field(
        description="Ceiling only: so_far_t above the whole day's ceiling (day_target_t): "
        "exceeded, whatever the hour; null without a ceiling."
    )
    above_pace: bool | None = Field(
        description="Ceiling only: so_far_t above expected_t, on course to pass the ceiling "
        "(a warning, not yet exceeded); null without an expectation."
    )


class Pace(Answer):
    """The day so far against the pace its targets expect by `at` (docs/api-contract.md)."""

    at: Timestamp
    history_days: list[LocalDate] = Field(description="The same weekday of the last 4 weeks.")
    profile_source: str | None = Field(
        description="The declared profile's source, when a measure falls back to it."
    )
    collected: PaceFigure = Field(description="Collected tonnage against the generation target.")
    reduce: PaceFigure
    utilize: PaceFigure
    residual: PaceFigure = Field(description="To landfill, against its ceiling.")


class DayFigures(PeriodFigures):
    """A whole local day (`yesterday`: the day before `date`)."""

    date: LocalDate
    has_data: bool = Field(description="False when nothing was weighed that day.")
    residual_ceiling_t: Tonnes | None = Field(
        description="The day's residual ceiling: residual_t, else the landfill quota per day."
    )
    residual_over_ceiling: bool | None = Field(
        description="Residual above the ceiling; null without a ceiling."
    )


class ProgressAnswer(Answer):
    """GET /v1/progress."""

    city: str
    date: LocalDate
    timezone: str
    as_of: Timestamp
    generation_t_per_day: Tonnes | None
    day: PeriodFigures
    month_to_date: MonthToDate
    trend: list[TrendDay]
    landfill_quota: LandfillQuota | None
    kbs: Kbs
    organic_at_landfill_t: Tonnes
    # Issue 14: the day so far against the pace expected by now, and the whole day before.
    pace: Pace
    yesterday: DayFigures


# --- /v1/meta ------------------------------------------------------------------------------

CodeT = TypeVar("CodeT")


class Label(Answer, Generic[CodeT]):
    """A code and its names in Bahasa Indonesia and English."""

    code: CodeT
    label_id: str
    label_en: str


class District(Answer):
    """A district (kecamatan) of the city."""

    district_id: str
    name: str


class CityInfo(Answer):
    """The city the answer is about."""

    city_id: str
    name: str
    province: str | None
    timezone: str
    bin_full_threshold: Share


class MetaAnswer(Answer):
    """GET /v1/meta: the vocabulary in both languages and the city's districts."""

    city: CityInfo
    categories: list[Label[Category]]
    device_kinds: list[Label[DeviceKind]]
    materials: list[Label[Material]]
    site_types: list[Label[SiteType]]
    streams: list[Label[Stream]]
    target_metrics: list[Label[TargetMetric]]
    districts: list[District]


# --- /v1/sites, /v1/devices, /v1/bins, /v1/alerts ------------------------------------------


class Device(Answer):
    """A device with its connection status."""

    device_id: str
    kind: DeviceKind
    site_id: str
    site_name: str
    district_id: str
    reporting_interval_s: int
    last_seen_at: Timestamp | None
    last_reading_ts: Timestamp | None
    status: DeviceStatus
    silent_for_s: int | None
    battery_pct: float | None
    fill_pct: float | None


class Site(Answer):
    """A place: waste bank, depot, facility or landfill gate, with its count of active devices."""

    site_id: str
    name: str
    site_type: SiteType
    process_kind: ProcessKind | None
    district_id: str
    district_name: str
    kelurahan: str | None
    rw: str | None
    lat: float | None
    lon: float | None
    active: bool
    capacity_t_per_day: float | None
    devices: int


class SiteDetail(Site):
    """A site and its devices."""

    device_list: list[Device]


class Bin(Answer):
    """A bin sensor's newest reading; `needs_collection` when the fill reached its threshold."""

    device_id: str
    site_id: str
    site_name: str
    district_id: str
    district_name: str
    lat: float | None
    lon: float | None
    fill_pct: float | None
    threshold_pct: float
    needs_collection: bool
    battery_pct: float | None
    temperature_c: float | None
    fire: bool
    tilt: bool
    lid_open: bool
    reading_ts: Timestamp | None
    status: DeviceStatus


class Alert(Answer):
    """Something that needs attention now, with a message in both languages."""

    kind: AlertKind
    severity: Severity
    device_id: str | None
    site_id: str | None
    district_id: str | None
    message_id: str
    message_en: str
    since: Timestamp | None
    # Issue 14: one id per occurrence, and who acknowledged it (null while nobody has).
    alert_id: str = Field(
        description="This occurrence's id: city.kind.device-or-site.start (UTC); a new "
        "occurrence gets a new id. POST /v1/alerts/{alert_id}/ack acknowledges it.",
        examples=["bandung.fire.bin-cicendo-001.20261126T021500Z"],
    )
    acknowledged_by: str | None = Field(description="Username (or API key label) of the first ack.")
    acknowledged_by_name: str | None = Field(description="That user's display name.")
    acknowledged_at: Timestamp | None
    ack_note: str | None


class AlertAck(Answer):
    """POST /v1/alerts/{alert_id}/ack: the acknowledgement kept for the occurrence (the first
    one: acknowledging again changes nothing and says `already_acknowledged`)."""

    alert_id: str
    kind: AlertKind
    acknowledged_by: str
    acknowledged_by_name: str
    acknowledged_at: Timestamp
    note: str | None
    already_acknowledged: bool


# --- /v1/reports/national ------------------------------------------------------------------


class NationalTerms(Answer):
    """A–E, shares over A and the unmanaged rest (docs/national-report.md)."""

    days: int
    days_with_data: int
    A_t: Tonnes | None
    A_basis: str
    A_month_estimate_t: Tonnes | None
    A_month_basis: str
    A_measured_t: Tonnes | None
    B_t: Tonnes | None
    B_share: Share | None
    C_t: Tonnes | None
    C_share: Share | None
    managed_t: Tonnes | None
    managed_share: Share | None
    unmanaged_t: Tonnes | None
    D_t: Tonnes | None
    E_t: Tonnes | None
    recycling_rate: Share | None
    reduce_t: Tonnes | None
    utilize_t: Tonnes | None
    residual_t: Tonnes | None


class ShareTargets(Answer):
    """The city's B/A and C/A targets."""

    B_share: Share | None
    C_share: Share | None


class MonthTerms(NationalTerms):
    """A month's national terms."""

    month: Month
    status: CoverageStatus
    targets: ShareTargets


class SilentScale(Answer):
    """A scale that sent nothing on some of the month's ended days."""

    device: str
    site: str
    days_with_data: int
    days_silent: int


class Coverage(Answer):
    """Which days and scales of a month sent data, and the month's status."""

    month: Month
    status: CoverageStatus
    days_in_month: int
    days_elapsed: int
    days_with_data: int
    days_without_data: list[LocalDate]
    partial: bool
    in_progress: bool
    scales_silent_some_days: list[SilentScale]


class LandfillLine(Answer):
    """A landfill gate's month: trips, net tonnes, quota use."""

    month: Month
    site: str
    site_name: str
    trips: int
    net_t: Tonnes
    t_per_trip: Tonnes | None
    quota_t: Tonnes | None
    quota_used_share: Share | None


class FacilityLine(Answer):
    """A processing facility's month: in, processed (in − residue), output weighed, residue."""

    month: Month
    site: str
    site_name: str
    in_t: Tonnes
    processed_t: Tonnes
    processed_output_t: Tonnes
    residue_t: Tonnes


class WasteBankLine(Answer):
    """Waste-bank deposits of one material in a month."""

    month: Month
    material: Material
    kg: float
    amount_rp: float
    deposits: int


class DataQuality(Answer):
    """Manual tickets, silent scales and quarantined messages of a month."""

    month: Month
    weighings: int
    manual_tickets: int
    manual_share: Share | None
    silent_scales_now: int
    silent_scale_ids: list[str]
    quarantined: int
    quarantined_by_status: dict[QuarantineStatus, int]
    generation_is_estimate: bool


class NationalMonthAnswer(MonthTerms):
    """GET /v1/reports/national?month=: the month's terms, coverage and report sections."""

    city: str
    coverage: Coverage
    landfill: list[LandfillLine]
    facilities: list[FacilityLine]
    waste_banks: list[WasteBankLine]
    data_quality: DataQuality


class CoveredMonthTerms(MonthTerms):
    """A month of a year: its terms and coverage."""

    coverage: Coverage


class AnnualTerms(NationalTerms):
    """The year's terms: exact sums over the months, shares over the covered A."""

    period: str
    months_by_status: dict[CoverageStatus, int]
    partial: bool


class NationalYearAnswer(Answer):
    """GET /v1/reports/national?year=: twelve months and the annual terms."""

    city: str
    year: int
    annual: AnnualTerms
    months: list[CoveredMonthTerms]


# --- admin ---------------------------------------------------------------------------------


class ProvisionedDevice(Answer):
    """A new device and its MQTT credentials (the password is shown this once)."""

    device_id: str
    kind: DeviceKind
    site_id: str
    city_id: str
    reporting_interval_s: int
    mqtt_username: str
    mqtt_password: str
    topic: str


class EditedSite(Answer):
    """A site after an edit."""

    site_id: str
    name: str
    site_type: SiteType
    district_id: str
    active: bool
    lat: float | None
    lon: float | None
    kelurahan: str | None
    rw: str | None
    capacity_t_per_day: float | None


class TargetAnswer(Answer):
    """A target row: a value over a period, valid from a date (to a date, when set)."""

    metric: TargetMetric
    value: float
    period_days: int
    valid_from: LocalDate
    valid_to: LocalDate | None
    source: str


class QuarantinedMessage(Answer):
    """A message ingest could not store, with the reason."""

    quarantine_id: int
    received_at: Timestamp
    topic: str
    payload: str = Field(
        description="The first 4,000 bytes, decoded as UTF-8 (bad bytes replaced)."
    )
    payload_bytes: int = Field(description="Size of the original message.")
    reason: str
    site_id: str | None
    device_id: str | None
    kind: str | None
    status: QuarantineStatus
    resolved_at: Timestamp | None
    resolution: str | None
    times_seen: int = Field(description="The same topic and bytes delivered again add to one row.")
    last_seen_at: Timestamp


# --- /v1/auth ------------------------------------------------------------------------------


class LoginRequest(BaseModel):
    """`POST /v1/auth/login`: a user's name and password (never logged)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str = Field(min_length=1, max_length=64, examples=["sari"])
    password: str = Field(min_length=1, max_length=1024, examples=["(the user's password)"])


class CallerAnswer(Answer):
    """Who the request acts as: a logged-in user's session, or an API key."""

    kind: Literal["session", "key"]
    label: str = Field(description="`user <name>` or `key <id>`, as error messages name it.")
    username: str | None
    display_name: str | None
    role: Role
    cities: list[str] = Field(description="The cities allowed; empty: every city.")
    expires_at: Timestamp | None = Field(
        description="When the session ends if unused (it slides forward on use); null for a key."
    )


class SessionAnswer(Answer):
    """A new login session: send `token` as `Authorization: Bearer <token>`."""

    token: str = Field(description="Shown once; only its SHA-256 is stored.")
    token_type: Literal["bearer"] = "bearer"
    user: CallerAnswer


class LogoutAnswer(Answer):
    """The session is over; the token no longer works."""

    ended: bool = Field(description="False when the session had already ended.")


# --- /v1/bins/forecast, /v1/bins/{device_id}/forecast (issue 12) -------------------------

ForecastStatus = Literal["ok", "insufficient_history"]
ForecastReason = Literal["no_readings", "stale", "too_few_hours"]
LocalMinute = Annotated[
    str,
    Field(
        description="Local time to the minute with the city's offset.",
        examples=["2026-11-02T14:30+07:00"],
    ),
]


class TimeToThreshold(Answer):
    """Hours from `as_of` until a fill level, and the local time: expected, and the band's ends
    (earliest: a fast day, latest: a slow one). 0 when the bin is already there; null when the
    level is not reached within 14 days."""

    expected_h: float | None
    earliest_h: float | None
    latest_h: float | None
    expected_at: LocalMinute | None
    earliest_at: LocalMinute | None
    latest_at: LocalMinute | None


class BinForecastItem(Answer):
    """One bin's forecast; `status` `insufficient_history` comes with the reason in `message`
    (then the figures are null)."""

    device_id: str
    site_id: str
    site_name: str
    district_id: str
    district_name: str
    status: ForecastStatus
    reason: ForecastReason | None = Field(
        description="Why there is no forecast: no readings in the look-back window, the newest "
        "older than 48 h, or fewer than 24 hourly rises between emptyings."
    )
    message: str
    threshold_pct: float
    current_fill_pct: float | None = Field(
        description="The newest hourly mean advanced by the forecast to `as_of`."
    )
    rate_pct_per_day: float | None = Field(description="Mean fill added per day over a week.")
    to_threshold: TimeToThreshold | None
    to_full: TimeToThreshold | None
    history_hours: int = Field(description="Hours with readings in the look-back window.")
    emptyings: int


class BinForecast(BinForecastItem):
    """GET /v1/bins/{device_id}/forecast: the bin's forecast with its band and hourly profile."""

    as_of: Timestamp
    band_low: float | None = Field(description="Multiplier of the rates on a slow day.")
    band_high: float | None = Field(description="Multiplier of the rates on a fast day.")
    rate_pct_by_hour_of_week: list[float] = Field(
        description="168 rates in % per hour, Monday 00:00 local first."
    )


class BinForecastsAnswer(Answer):
    """GET /v1/bins/forecast: every active bin of the city (or a district), soonest to its
    threshold first (bins already there first, bins without a forecast last)."""

    city: str
    district: str | None
    as_of: Timestamp
    lookback_days: int
    bins: list[BinForecastItem]


# --- /v1/collection-plan (issue 12) --------------------------------------------------------

PlanStatus = Literal["ok", "partial", "empty", "no_fleet"]
# Why a depot is not in the plan (the texts are pisman.planning.model.REASONS).
PlanReason = Literal["deferred", "no_data", "no_trucks", "no_capacity", "not_reachable"]
# Why a depot is not in the plan, in Bahasa Indonesia and English (the plan's `reason` joins
# both; the dashboard shows the page's language).
PLAN_REASON_TEXT: dict[PlanReason, tuple[str, str]] = {
    "deferred": (
        "di atas ambang tetapi menurut perkiraan tidak meluap sebelum rit besok",
        "above its threshold, but forecast not to overflow before tomorrow's round",
    ),
    "no_data": ("tidak ada data isi yang cukup", "not enough fill data"),
    "no_trucks": ("tidak ada truk di pool ini", "no trucks in this pool"),
    "no_capacity": (
        "muatan melebihi kapasitas truk dan shift",
        "more waste than the trucks can carry in their shifts",
    ),
    "not_reachable": (
        "tidak terjangkau dalam jam shift dan jam buka TPA",
        "not reachable within shifts and landfill hours",
    ),
}
ClockTime = Annotated[
    str,
    Field(description="Local HH:MM of the plan's day; `(+1)` after it when past midnight."),
]


class PlanStop(Answer):
    """One depot stop, in the truck's order."""

    order: int
    site_id: str
    site_name: str
    district_id: str
    district_name: str
    kelurahan: str | None
    lat: float
    lon: float
    expected_fill_pct: float
    load_t: Tonnes
    window_start: ClockTime
    window_end: ClockTime
    arrival: ClockTime
    late_min: int = Field(description="Minutes after the window's end (0: on time).")
    mandatory: bool
    above_threshold: bool
    why: str


class PlanTrip(Answer):
    """Depots emptied in order, then the landfill gate."""

    number: int
    load_t: Tonnes
    km: float
    landfill_arrival: ClockTime
    stops: list[PlanStop]


class PlanTruck(Answer):
    """A truck's day."""

    truck_id: str
    pool_id: str
    capacity_t: float
    start: ClockTime
    end: ClockTime
    km: float
    load_t: Tonnes
    trips: list[PlanTrip]


class PlanUncovered(Answer):
    """A depot that needs emptying and is not in the plan, and why."""

    site_id: str
    site_name: str
    district_id: str
    kelurahan: str | None
    pool_id: str | None
    expected_fill_pct: float | None
    reason_code: PlanReason
    reason: str


class PlanSummary(Answer):
    """The plan's totals."""

    trucks_used: int
    trucks_available: int
    trips: int
    km: float
    load_t: Tonnes
    t_per_trip: float | None
    stops: int
    stops_needed: int
    uncovered: int
    optional_left: int
    solve_s: float


class PlanPlace(Answer):
    """A pool or the landfill gate on the map."""

    id: str
    name: str
    lat: float
    lon: float


class PlanAnswer(Answer):
    """GET /v1/collection-plan: a day's plan; `status` `partial` when some depots are
    uncovered (listed with the reason), `no_fleet` when the city has no fleet data."""

    city_id: str
    date: LocalDate
    pool: str | None
    as_of: Timestamp
    status: PlanStatus
    messages: list[str]
    summary: PlanSummary
    trucks: list[PlanTruck]
    uncovered: list[PlanUncovered]
    deferred: list[PlanUncovered]
    pools: list[PlanPlace]
    landfill: PlanPlace | None
    landfill_hours: str | None


class CitiesAnswer(Answer):
    """GET /v1/cities: the cities of the deployment the caller may see, by name."""

    cities: list[CityInfo] = Field(description="Sorted by name; only those the caller may see.")
    default_city_id: str | None = Field(
        description="The server's default city (PISMAN_CITY) if the caller may see it, else the"
        " first of `cities`; null when the caller may see none."
    )


# --- /v1/districts/boundaries (issue 14) ------------------------------------------------------


class MultiPolygonGeometry(Answer):
    """A GeoJSON MultiPolygon: polygons of rings of [longitude, latitude] (WGS84)."""

    type: Literal["MultiPolygon"]
    coordinates: list[list[list[list[float]]]]


class DistrictBoundary(Answer):
    """One district's outline with its name."""

    district_id: str
    name: str
    geometry: MultiPolygonGeometry
    bbox: list[float] = Field(description="[min lon, min lat, max lon, max lat]")


class DistrictBoundariesAnswer(Answer):
    """GET /v1/districts/boundaries: the outlines the city file provides, or none (`districts`
    empty, `source` and `bbox` null) for a city without them. Districts that are not an area of
    the city (a landfill's own entry) have no outline."""

    city: str
    source: str | None = Field(description="Where the outlines come from (city file).")
    bbox: list[float] | None = Field(
        description="[min lon, min lat, max lon, max lat] of every outline; null without any."
    )
    districts: list[DistrictBoundary]
