"""City data files: the pydantic model of data/cities/*.yaml, reading it, and loading it into the database."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import psycopg
import yaml
from psycopg.types.json import Jsonb
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from pisman import geo
from pisman.domain import (
    CITY_ID_PATTERN,
    ID_PATTERN,
    DeviceKind,
    Material,
    ProcessKind,
    SiteType,
    TargetMetric,
)
from pisman.geo import BoundaryError, DistrictShape, parse_boundaries
from pisman.targets import TargetSpec, upsert_targets


class CityFileError(Exception):
    """A city data file cannot be used; str() names the file and the field."""

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = Path(path)
        self.field = field
        self.message = message
        super().__init__(f"city file {self.path}: {field}: {message}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Model):
    """A number with the document it comes from."""

    value: float
    source: str = Field(min_length=3)


class Range(_Model):
    """A [low, high] interval with its source."""

    low: float
    high: float
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class Shares(_Model):
    """Shares that add up to 1, with their source."""

    shares: dict[str, float]
    source: str = Field(min_length=3)

    @field_validator("shares")
    @classmethod
    def _sum_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in value.values()):
            raise ValueError("shares must not be negative")
        total = sum(value.values())
        if not math.isclose(total, 1.0, abs_tol=0.005):
            raise ValueError(f"shares add up to {total:.4f}, not 1")
        return value


class Profile(_Model):
    """Relative factors (weekday Monday..Sunday, or hour 0..23), with their source."""

    values: list[float]
    source: str = Field(min_length=3)


class CityInfo(_Model):
    """The city row."""

    id: str = Field(pattern=CITY_ID_PATTERN)
    name: str
    province: str | None = None
    timezone: str = "Asia/Jakarta"
    bin_full_threshold: float = Field(0.8, gt=0, le=1)


class District(_Model):
    """A kecamatan, with a compact spec of its neighbourhoods (RW)."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    kelurahan: int = Field(1, ge=1, description="number of kelurahan (sub-districts)")
    rw_per_kelurahan: int = Field(0, ge=0)
    kbs_rw: int = Field(0, ge=0, description="RW declared Kawasan Bebas Sampah")
    households_per_rw: int = Field(400, ge=1)

    @model_validator(mode="after")
    def _kbs_fits(self) -> District:
        if self.kbs_rw > self.kelurahan * self.rw_per_kelurahan:
            raise ValueError(f"kbs_rw ({self.kbs_rw}) exceeds the district's RW count")
        return self


class Site(_Model):
    """One place (depot, waste bank, processing site, landfill gate)."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    type: SiteType
    district: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    process_kind: ProcessKind | None = None
    capacity_t_per_day: float | None = Field(None, ge=0)
    kelurahan: str | None = None
    rw: str | None = None
    active: bool = True
    devices: list[DeviceKind] | None = None  # overrides simulation.devices_per_site_type

    @model_validator(mode="after")
    def _process_kind(self) -> Site:
        if (self.type == SiteType.PROCESSING) != (self.process_kind is not None):
            raise ValueError("process_kind is required for processing sites and only for them")
        return self


class SiteGroup(_Model):
    """Many similar sites generated from a compact spec (ids from a pattern, coordinates near the district)."""

    type: SiteType
    id_pattern: str = Field(description="e.g. 'tps-{district}-{n:02d}'")
    name_pattern: str = Field(description="e.g. 'TPS {district_name} {n}'")
    per_district: dict[str, int]
    spread_km: float = Field(1.0, ge=0)
    capacity_t_per_day: float | None = Field(None, ge=0)
    source: str = Field(min_length=3)

    @field_validator("type")
    @classmethod
    def _not_processing(cls, value: SiteType) -> SiteType:
        if value == SiteType.PROCESSING:
            raise ValueError("processing sites are listed one by one (each needs a process_kind)")
        return value


class Target(_Model):
    """A target for one metric and period, with the document it comes from."""

    metric: TargetMetric
    value: float = Field(ge=0)
    period: str = Field(pattern=r"^\d+ (day|days|month|months|year|years)$")
    valid_from: date = date(2000, 1, 1)
    valid_to: date | None = None
    source: str = Field(min_length=3)


class DepotParams(_Model):
    """How depots (TPS) fill and empty."""

    cart_kg: Range
    separated_share: Figure
    container_t: Figure
    collection_delay_h: Range
    opening_hours: Range
    # Share of arriving tonnage picked out and sold to recyclers (stream to_recycler); none if unset.
    to_recycler_share: Figure | None = None


class WasteBankParams(_Model):
    """Member deposits at waste banks."""

    deposit_kg: Range
    opening_hours: Range
    materials: Shares
    price_rp_per_kg: dict[Material, float]
    price_source: str = Field(min_length=3)
    hub_share: Figure
    hub_transfer_kg: Range
    hub_transfers_per_day: Figure


class ProcessingParams(_Model):
    """Input and residue at processing sites (TPS3R / TPST)."""

    total_input_t_per_day: Figure
    from_depot_share: Figure
    load_kg: Range
    residue_share: dict[ProcessKind, float]
    residue_source: str = Field(min_length=3)
    input_materials: dict[ProcessKind, dict[Material, float]]


class LandfillParams(_Model):
    """Trucks at the landfill gate."""

    travel_h: Range
    tare_kg: Range
    organic_truck_share: Figure
    residue_truck_kg: Figure


class BinParams(_Model):
    """Bin fill sensors."""

    interval_s: int = Field(300, ge=10)
    backfill_interval_s: int = Field(900, ge=10)
    battery_drain_pct_per_day: Figure
    source: str = Field(min_length=3)


class Simulation(_Model):
    """Parameters of the simulated city; every figure carries its source."""

    generation_t_per_day: Figure
    composition: Shares
    weekday_factors: Profile
    hourly_profile: Profile
    reduced_share: Figure
    uncollected_share: Figure
    manual_ticket_share: Figure
    depot: DepotParams
    waste_bank: WasteBankParams
    processing: ProcessingParams
    landfill: LandfillParams
    bins: BinParams
    devices_per_site_type: dict[SiteType, list[DeviceKind]]

    @model_validator(mode="after")
    def _materials(self) -> Simulation:
        known = {m.value for m in Material}
        for name, shares in (
            ("composition", self.composition),
            ("waste_bank.materials", self.waste_bank.materials),
        ):
            unknown = sorted(set(shares.shares) - known)
            if unknown:
                raise ValueError(f"{name}: unknown material(s) {', '.join(unknown)}")
        return self

    @field_validator("weekday_factors")
    @classmethod
    def _seven(cls, value: Profile) -> Profile:
        if len(value.values) != 7:
            raise ValueError(f"needs 7 values (Monday..Sunday), got {len(value.values)}")
        return value

    @field_validator("hourly_profile")
    @classmethod
    def _twenty_four(cls, value: Profile) -> Profile:
        if len(value.values) != 24 or sum(value.values) <= 0:
            raise ValueError(
                f"needs 24 non-negative values with a positive sum, got {len(value.values)}"
            )
        return value


class HoursOfDay(_Model):
    """Local hours of a day [low, high), with their source."""

    low: float = Field(ge=0, le=24)
    high: float = Field(ge=0, le=24)
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _ordered(self) -> HoursOfDay:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be before high ({self.high}) on the same day")
        return self


class TruckPool(_Model):
    """A truck pool (pool kendaraan): where trucks start and end their shift, and what it serves."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    districts: list[str] = Field(min_length=1, description="districts whose depots it serves")
    source: str = Field(min_length=3)


class TruckGroup(_Model):
    """Identical trucks of one pool, ids from a pattern (`{pool}-{n:02d}`)."""

    pool: str = Field(pattern=ID_PATTERN)
    id_pattern: str = "{pool}-{n:02d}"
    count: int = Field(ge=0, le=500)
    capacity_t: Figure
    shift: HoursOfDay
    source: str = Field(min_length=3)

    @field_validator("id_pattern")
    @classmethod
    def _pattern_makes_ids(cls, value: str) -> str:
        try:
            example = value.format(pool="pool", n=1)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ValueError(f"uses only {{pool}} and {{n}}: {exc}") from None
        if not re.match(ID_PATTERN, example) or value.format(pool="pool", n=2) == example:
            raise ValueError(f"must give distinct lowercase ids per {{n}}, e.g. {example!r}")
        return value

    @field_validator("capacity_t")
    @classmethod
    def _positive_capacity(cls, value: Figure) -> Figure:
        if not 0 < value.value <= 60:
            raise ValueError(f"value must be above 0 and at most 60 t, got {value.value}")
        return value


class Truck(_Model):
    """One truck (generated from a TruckGroup)."""

    id: str
    pool: str
    capacity_kg: int
    shift_start_h: float
    shift_end_h: float
    source: str


class Fleet(_Model):
    """Collection fleet and the figures a collection plan needs (docs/collection-planning.md)."""

    landfill: str = Field(
        pattern=ID_PATTERN, description="site id of the landfill gate trucks unload at"
    )
    landfill_hours: HoursOfDay
    landfill_unload_min: Figure
    service_min: Figure
    detour_factor: Figure
    speed_kmh: Figure
    container_t: Figure
    pools: list[TruckPool] = Field(default_factory=list)
    trucks: list[TruckGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Fleet:
        for name, fig, low, high in (
            ("landfill_unload_min", self.landfill_unload_min, 0, 600),
            ("service_min", self.service_min, 0, 600),
            ("detour_factor", self.detour_factor, 1, 5),
            ("speed_kmh", self.speed_kmh, 1, 120),
            ("container_t", self.container_t, 0.1, 60),
        ):
            if not low <= fig.value <= high:
                raise ValueError(f"{name}: value must be between {low} and {high}, got {fig.value}")
        pool_ids = [p.id for p in self.pools]
        if len(set(pool_ids)) != len(pool_ids):
            raise ValueError(f"pool ids repeat: {_repeats(pool_ids)}")
        for i, group in enumerate(self.trucks):
            if group.pool not in pool_ids:
                raise ValueError(f"trucks.{i}: unknown pool {group.pool!r}")
        served: dict[str, str] = {}
        for pool in self.pools:
            for d in pool.districts:
                if d in served:
                    raise ValueError(f"district {d!r} is served by pools {served[d]} and {pool.id}")
                served[d] = pool.id
        truck_ids = [t.id for t in self.all_trucks()]
        if len(set(truck_ids)) != len(truck_ids):
            raise ValueError(f"truck ids repeat: {_repeats(truck_ids)}")
        return self

    def all_trucks(self) -> list[Truck]:
        """Every truck, generated from the groups in file order."""
        out: list[Truck] = []
        for group in self.trucks:
            for n in range(1, group.count + 1):
                out.append(
                    Truck(
                        id=group.id_pattern.format(pool=group.pool, n=n),
                        pool=group.pool,
                        capacity_kg=round(group.capacity_t.value * 1000),
                        shift_start_h=group.shift.low,
                        shift_end_h=group.shift.high,
                        source=f"{group.source}; capacity: {group.capacity_t.source}; "
                        f"shift: {group.shift.source}",
                    )
                )
        return out


class Boundaries(_Model):
    """District outlines: a GeoJSON file beside the city file (docs/city-data.md, Boundaries)."""

    file: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(geojson|json)$",
        description="file name in the city file's folder, e.g. bandung-districts.geojson",
    )
    source: str = Field(min_length=3)
    without: list[str] = Field(
        default_factory=list,
        description="districts that are not an area of the city (e.g. a landfill's own entry)",
    )


class PaceProfile(Profile):
    """The share of a day's tonnage weighed in each local hour 0..23 (relative factors), with its
    source: the overview's "expected by now" while the city's own history is too short
    (docs/city-data.md, Pace profile)."""

    @field_validator("values")
    @classmethod
    def _twenty_four_hours(cls, value: list[float]) -> list[float]:
        if len(value) != 24:
            raise ValueError(f"needs 24 values (hours 0..23), got {len(value)}")
        if any(not math.isfinite(v) or v < 0 for v in value) or sum(value) <= 0:
            raise ValueError("needs non-negative numbers with a positive sum")
        return value


class City(_Model):
    """A whole city data file."""

    format: Literal[1] = 1
    city: CityInfo
    notes: str | None = None
    districts: list[District] = Field(min_length=1)
    sites: list[Site] = Field(default_factory=list)
    site_groups: list[SiteGroup] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    simulation: Simulation | None = None
    fleet: Fleet | None = None
    pace_profile: PaceProfile | None = None
    boundaries: Boundaries | None = None
    # The outlines read from boundaries.file by read_city_file (never from the YAML itself).
    _shapes: list[DistrictShape] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> City:
        district_ids = [d.id for d in self.districts]
        if len(set(district_ids)) != len(district_ids):
            raise ValueError(f"district ids repeat: {_repeats(district_ids)}")
        known = set(district_ids)
        for i, site in enumerate(self.sites):
            if site.district not in known:
                raise ValueError(f"sites.{i} ({site.id}): unknown district {site.district!r}")
        for i, group in enumerate(self.site_groups):
            unknown = sorted(set(group.per_district) - known)
            if unknown:
                raise ValueError(f"site_groups.{i}: unknown district(s) {', '.join(unknown)}")
        site_ids = [s.id for s in self.all_sites()]
        if len(set(site_ids)) != len(site_ids):
            raise ValueError(f"site ids repeat: {_repeats(site_ids)}")
        if self.fleet is not None:
            by_id = {s.id: s for s in self.all_sites()}
            gate = by_id.get(self.fleet.landfill)
            if gate is None or gate.type != SiteType.LANDFILL:
                raise ValueError(f"fleet.landfill: {self.fleet.landfill!r} is not a landfill site")
            for i, pool in enumerate(self.fleet.pools):
                unknown = sorted(set(pool.districts) - known)
                if unknown:
                    raise ValueError(
                        f"fleet.pools.{i} ({pool.id}): unknown district(s) {', '.join(unknown)}"
                    )
        return self

    def all_sites(self) -> list[Site]:
        """The listed sites followed by the generated ones, in a stable order."""
        by_id = {d.id: d for d in self.districts}
        out = list(self.sites)
        for group in self.site_groups:
            for district_id, count in group.per_district.items():
                d = by_id[district_id]
                for n in range(1, count + 1):
                    site_id = group.id_pattern.format(district=district_id, n=n)
                    dlat, dlon = _jitter(site_id, group.spread_km, d.lat)
                    out.append(
                        Site(
                            id=site_id,
                            name=group.name_pattern.format(
                                district_name=d.name, district=district_id, n=n
                            ),
                            type=group.type,
                            district=district_id,
                            lat=round(d.lat + dlat, 5),
                            lon=round(d.lon + dlon, 5),
                            capacity_t_per_day=group.capacity_t_per_day,
                        )
                    )
        return out

    def neighbourhoods(self) -> list[Neighbourhood]:
        """Neighbourhood (RW) rows generated from each district's compact spec."""
        rows: list[Neighbourhood] = []
        for d in self.districts:
            rws = [
                (k, r) for k in range(1, d.kelurahan + 1) for r in range(1, d.rw_per_kelurahan + 1)
            ]
            # Which RW are KBS: a stable pseudo-random pick, spread over the kelurahan.
            ranked = sorted(rws, key=lambda kr: _hash_unit(f"{d.id}:{kr[0]}:{kr[1]}"))
            kbs = set(ranked[: d.kbs_rw])
            for k, r in rws:
                key = f"{d.id}:{k}:{r}"
                households = max(
                    1, round(d.households_per_rw * (0.7 + 0.6 * _hash_unit(key + ":hh")))
                )
                if (k, r) in kbs:
                    share = 0.30 + 0.45 * _hash_unit(key + ":sep")
                    since: date | None = date(
                        2019 + int(_hash_unit(key + ":y") * 6.99),
                        1 + int(_hash_unit(key + ":m") * 11.99),
                        1,
                    )
                else:
                    share = 0.29 * _hash_unit(key + ":sep")
                    since = None
                separating = (
                    math.ceil(households * share) if since else math.floor(households * share)
                )
                rows.append(
                    Neighbourhood(
                        district_id=d.id,
                        kelurahan=f"{d.name} {k}",
                        rw=f"{r:03d}",
                        households=households,
                        separating_households=min(households, separating),
                        kbs_since=since,
                    )
                )
        return rows


class Neighbourhood(_Model):
    """One RW row (generated)."""

    district_id: str
    kelurahan: str
    rw: str
    households: int
    separating_households: int
    kbs_since: date | None


def _repeats(ids: list[str]) -> str:
    counts: dict[str, int] = {}
    for i in ids:
        counts[i] = counts.get(i, 0) + 1
    return ", ".join(sorted(i for i, n in counts.items() if n > 1)[:5])


def _hash_unit(key: str) -> float:
    """A stable number in [0, 1) from a string (no RNG state, so files always expand the same way)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def _jitter(key: str, spread_km: float, lat: float) -> tuple[float, float]:
    angle = 2 * math.pi * _hash_unit(key + ":a")
    dist_km = spread_km * math.sqrt(_hash_unit(key + ":r"))
    dlat = dist_km / 111.0 * math.sin(angle)
    dlon = dist_km / (111.0 * math.cos(math.radians(lat))) * math.cos(angle)
    return dlat, dlon


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def read_city_file(path: Path | str) -> City:
    """Read and validate a city file; raise CityFileError naming the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CityFileError(path, "(file)", exc.strerror or str(exc)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(yaml)"
        raise CityFileError(
            path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(data, dict):
        raise CityFileError(
            path, "(top level)", "must be a mapping with city, districts, sites, targets"
        )
    try:
        city = City.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise CityFileError(path, _field_path(err["loc"]), msg + more) from None
    return read_boundaries(path, city)


def read_boundaries(path: Path, city: City) -> City:
    """Read and check the GeoJSON that `boundaries.file` names (beside the city file at `path`);
    the city keeps the outlines for load_city. CityFileError names the GeoJSON file and the reason."""
    if city.boundaries is None:
        return city
    geo_path = path.parent / city.boundaries.file
    try:
        with geo_path.open("rb") as f:
            # One byte more than allowed is enough to tell a file too big, without reading it all.
            data = f.read(geo.MAX_BYTES + 1)
    except OSError as exc:
        raise CityFileError(geo_path, "boundaries.file", exc.strerror or str(exc)) from None
    try:
        shapes = parse_boundaries(
            data, [d.id for d in city.districts], without=city.boundaries.without
        )
    except BoundaryError as exc:
        raise CityFileError(geo_path, "boundaries", str(exc)) from None
    city._shapes = shapes
    return city


UPSERT_CITY = """
INSERT INTO city (city_id, name, province, timezone, bin_full_threshold)
VALUES (%(id)s, %(name)s, %(province)s, %(timezone)s, %(bin_full_threshold)s)
ON CONFLICT (city_id) DO UPDATE SET name = EXCLUDED.name, province = EXCLUDED.province,
  timezone = EXCLUDED.timezone, bin_full_threshold = EXCLUDED.bin_full_threshold
"""
UPSERT_DISTRICT = """
INSERT INTO district (city_id, district_id, name) VALUES (%s, %s, %s)
ON CONFLICT (city_id, district_id) DO UPDATE SET name = EXCLUDED.name
"""
FOREIGN_SITES = "SELECT site_id, city_id FROM site WHERE site_id = ANY(%s) AND city_id <> %s"
UPSERT_SITE = """
INSERT INTO site (site_id, city_id, district_id, kelurahan, rw, name, site_type, process_kind,
                  lat, lon, capacity_t_per_day, active)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (site_id) DO UPDATE SET district_id = EXCLUDED.district_id, kelurahan = EXCLUDED.kelurahan,
  rw = EXCLUDED.rw, name = EXCLUDED.name, site_type = EXCLUDED.site_type,
  process_kind = EXCLUDED.process_kind, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
  capacity_t_per_day = EXCLUDED.capacity_t_per_day, active = EXCLUDED.active, updated_at = now()
WHERE (site.district_id, site.kelurahan, site.rw, site.name, site.site_type, site.process_kind,
       site.lat, site.lon, site.capacity_t_per_day, site.active)
  IS DISTINCT FROM (EXCLUDED.district_id, EXCLUDED.kelurahan, EXCLUDED.rw, EXCLUDED.name,
       EXCLUDED.site_type, EXCLUDED.process_kind, EXCLUDED.lat, EXCLUDED.lon,
       EXCLUDED.capacity_t_per_day, EXCLUDED.active)
"""
# Sites dropped from the file are deactivated, not deleted: devices and readings refer to them.
DEACTIVATE_MISSING_SITES = """
UPDATE site SET active = false, updated_at = now()
WHERE city_id = %s AND active AND NOT (site_id = ANY(%s))
"""
DELETE_MISSING_NEIGHBOURHOODS = """
DELETE FROM neighbourhood n
WHERE n.city_id = %s
  AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[], %s::text[]) AS f(d, k, r)
                  WHERE f.d = n.district_id AND f.k = n.kelurahan AND f.r = n.rw)
"""
UPSERT_NEIGHBOURHOOD = """
INSERT INTO neighbourhood (city_id, district_id, kelurahan, rw, households, separating_households, kbs_since)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (city_id, district_id, kelurahan, rw) DO UPDATE SET households = EXCLUDED.households,
  separating_households = EXCLUDED.separating_households, kbs_since = EXCLUDED.kbs_since
"""
UPSERT_COLLECTION_PARAMS = """
INSERT INTO collection_params (city_id, landfill_site_id, landfill_open_h, landfill_close_h,
  landfill_unload_min, service_min, detour_factor, speed_kmh, container_kg, sources)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (city_id) DO UPDATE SET landfill_site_id = EXCLUDED.landfill_site_id,
  landfill_open_h = EXCLUDED.landfill_open_h, landfill_close_h = EXCLUDED.landfill_close_h,
  landfill_unload_min = EXCLUDED.landfill_unload_min, service_min = EXCLUDED.service_min,
  detour_factor = EXCLUDED.detour_factor, speed_kmh = EXCLUDED.speed_kmh,
  container_kg = EXCLUDED.container_kg, sources = EXCLUDED.sources, updated_at = now()
"""
# Pools and trucks are configuration that no reading refers to: the file is the whole truth.
DELETE_FLEET = "DELETE FROM truck_pool WHERE city_id = %s"
DELETE_COLLECTION_PARAMS = "DELETE FROM collection_params WHERE city_id = %s"
INSERT_POOL = """
INSERT INTO truck_pool (city_id, pool_id, name, lat, lon, districts, source)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
INSERT_TRUCK = """
INSERT INTO truck (city_id, truck_id, pool_id, capacity_kg, shift_start_h, shift_end_h, source)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


def _load_fleet(conn: psycopg.Connection, cid: str, fleet: Fleet | None) -> str:
    """Replace the city's pools, trucks and collection figures with the file's (none: removed)."""
    conn.execute(DELETE_FLEET, (cid,))
    if fleet is None:
        conn.execute(DELETE_COLLECTION_PARAMS, (cid,))
        return "no fleet"
    sources = {
        "landfill_hours": fleet.landfill_hours.source,
        "landfill_unload_min": fleet.landfill_unload_min.source,
        "service_min": fleet.service_min.source,
        "detour_factor": fleet.detour_factor.source,
        "speed_kmh": fleet.speed_kmh.source,
        "container_t": fleet.container_t.source,
    }
    conn.execute(
        UPSERT_COLLECTION_PARAMS,
        (
            cid,
            fleet.landfill,
            fleet.landfill_hours.low,
            fleet.landfill_hours.high,
            fleet.landfill_unload_min.value,
            fleet.service_min.value,
            fleet.detour_factor.value,
            fleet.speed_kmh.value,
            round(fleet.container_t.value * 1000),
            Jsonb(sources),
        ),
    )
    trucks = fleet.all_trucks()
    with conn.cursor() as cur:
        cur.executemany(
            INSERT_POOL,
            [(cid, p.id, p.name, p.lat, p.lon, p.districts, p.source) for p in fleet.pools],
        )
        cur.executemany(
            INSERT_TRUCK,
            [
                (
                    cid,
                    t.id,
                    t.pool,
                    t.capacity_kg,
                    t.shift_start_h,
                    t.shift_end_h,
                    t.source,
                )
                for t in trucks
            ],
        )
    return f"{len(fleet.pools)} truck pools, {len(trucks)} trucks"


# Outlines are configuration no reading refers to: the file is the whole truth.
DELETE_BOUNDARIES = "DELETE FROM district_boundary WHERE city_id = %s"
INSERT_BOUNDARY = """
INSERT INTO district_boundary (city_id, district_id, geometry, min_lon, min_lat, max_lon, max_lat, source)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""


def _load_boundaries(conn: psycopg.Connection, cid: str, city: City) -> str:
    """Replace the city's district outlines with the file's (no boundaries: removed)."""
    conn.execute(DELETE_BOUNDARIES, (cid,))
    if city.boundaries is None or not city._shapes:
        return "no district boundaries"
    source = city.boundaries.source
    with conn.cursor() as cur:
        cur.executemany(
            INSERT_BOUNDARY,
            [(cid, s.district_id, Jsonb(s.geometry()), *s.bbox(), source) for s in city._shapes],
        )
    return f"boundaries of {len(city._shapes)} districts"


UPSERT_PACE_PROFILE = """
INSERT INTO city_pace_profile (city_id, hourly, source) VALUES (%s, %s, %s)
ON CONFLICT (city_id) DO UPDATE SET hourly = EXCLUDED.hourly, source = EXCLUDED.source,
  updated_at = now()
"""
DELETE_PACE_PROFILE = "DELETE FROM city_pace_profile WHERE city_id = %s"


def pace_profile_of(city: City) -> Profile | None:
    """The hourly profile the API's pace falls back on: the file's `pace_profile`, else its
    simulation's `hourly_profile` (its source says so), else none."""
    if city.pace_profile is not None:
        return city.pace_profile
    if city.simulation is not None:
        sim = city.simulation.hourly_profile
        return Profile(values=sim.values, source=f"simulation.hourly_profile: {sim.source}")
    return None


def _load_pace_profile(conn: psycopg.Connection, cid: str, city: City) -> str:
    """Store the city's hourly pace profile (none in the file: removed)."""
    profile = pace_profile_of(city)
    if profile is None:
        conn.execute(DELETE_PACE_PROFILE, (cid,))
        return "no pace profile"
    conn.execute(UPSERT_PACE_PROFILE, (cid, profile.values, profile.source))
    return "pace profile" if city.pace_profile is not None else "pace profile from simulation"


def load_city(conn: psycopg.Connection, city: City) -> str:
    """Insert or update the city, its districts, sites, neighbourhoods and targets; return a summary line."""
    sites = city.all_sites()
    cid = city.city.id
    with conn.transaction():
        foreign = conn.execute(FOREIGN_SITES, ([s.id for s in sites], cid)).fetchall()
        if foreign:
            site_id, other = foreign[0]
            raise CityFileError(
                f"<{cid}>", "sites", f"site id {site_id!r} already belongs to city {other!r}"
            )
        conn.execute(UPSERT_CITY, city.city.model_dump())
        with conn.cursor() as cur:
            cur.executemany(UPSERT_DISTRICT, [(cid, d.id, d.name) for d in city.districts])
            cur.executemany(
                UPSERT_SITE,
                [
                    (
                        s.id,
                        cid,
                        s.district,
                        s.kelurahan,
                        s.rw,
                        s.name,
                        s.type.value,
                        s.process_kind.value if s.process_kind else None,
                        s.lat,
                        s.lon,
                        s.capacity_t_per_day,
                        s.active,
                    )
                    for s in sites
                ],
            )
            conn.execute(DEACTIVATE_MISSING_SITES, (cid, [s.id for s in sites]))
            hoods = city.neighbourhoods()
            conn.execute(
                DELETE_MISSING_NEIGHBOURHOODS,
                (
                    cid,
                    [n.district_id for n in hoods],
                    [n.kelurahan for n in hoods],
                    [n.rw for n in hoods],
                ),
            )
            cur.executemany(
                UPSERT_NEIGHBOURHOOD,
                [
                    (
                        cid,
                        n.district_id,
                        n.kelurahan,
                        n.rw,
                        n.households,
                        n.separating_households,
                        n.kbs_since,
                    )
                    for n in hoods
                ],
            )
        upsert_targets(
            conn,
            cid,
            [
                TargetSpec(t.metric, t.value, t.period, t.valid_from, t.valid_to, t.source)
                for t in city.targets
            ],
        )
        fleet_summary = _load_fleet(conn, cid, city.fleet)
        fleet_summary += ", " + _load_pace_profile(conn, cid, city)
        fleet_summary += ", " + _load_boundaries(conn, cid, city)
    by_type: dict[str, int] = {}
    for s in sites:
        by_type[s.type.value] = by_type.get(s.type.value, 0) + 1
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(by_type.items()))
    kbs = sum(1 for n in hoods if n.kbs_since is not None)
    return (
        f"city {cid}: {len(city.districts)} districts, {len(sites)} sites ({kinds}), "
        f"{len(hoods)} neighbourhoods ({kbs} KBS), {len(city.targets)} targets, {fleet_summary}"
    )
