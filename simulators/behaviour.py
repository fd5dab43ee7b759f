"""How the simulated city behaves: carts, trucks, deposits, facility loads and bin fill, hour by hour."""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pisman.citydata import City, Range, Site
from pisman.domain import DeviceKind, SiteType
from simulators.collection import Collection
from simulators.devices import SimDevice

HOUR_MS = 3_600_000
# Trucks never carry more than this, whatever piled up at a depot (DOMAIN.md: 4-8 t loads).
MAX_TRUCK_G = 12_000_000


@dataclass(slots=True)
class Reading:
    """One reading a device takes: its own clock, its fields, and the grams it weighed."""

    device: SimDevice
    ts_ms: int
    fields: dict[str, Any]
    net_g: int = 0
    seq: int = -1
    sent_ms: int = -1  # the timestamp as sent (device clock, skew included)


def rng_for(seed: int, *parts: str) -> random.Random:
    """An independent, reproducible random stream per (seed, name)."""
    digest = hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth for small means, normal approximation above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _tri(rng: random.Random, r: Range, mode_at: float = 0.3) -> float:
    return rng.triangular(r.low, r.high, r.low + (r.high - r.low) * mode_at)


def _tri_mean(r: Range, mode_at: float = 0.3) -> float:
    return (r.low + r.high + r.low + (r.high - r.low) * mode_at) / 3


def _pick(rng: random.Random, shares: dict[Any, float]) -> Any:
    x = rng.random() * sum(shares.values())
    for key, share in shares.items():
        x -= share
        if x <= 0:
            return key
    return key


def _in_hours(local_hour: float, r: Range) -> bool:
    return r.low <= local_hour < r.high


@dataclass(slots=True)
class _Depot:
    site: Site
    weighbridge: SimDevice | None
    bin: SimDevice | None
    rng: random.Random
    weight: float
    plate: str
    load_g: int = 0
    truck_at_ms: int | None = None
    battery: float = 100.0
    # Recyclables picked out of arriving loads, sold to recyclers (pelapak) once a day; their
    # own random stream, so a city without sales simulates exactly as before.
    recyclable_g: int = 0
    sale_rng: random.Random | None = None


@dataclass(slots=True)
class _Facility:
    site: Site
    scale: SimDevice | None
    rng: random.Random
    share: float
    depots: list[str]
    plate: str
    residue_g: int = 0


@dataclass(slots=True)
class _Bank:
    site: Site
    scale: SimDevice | None
    rng: random.Random
    daily_g: float


@dataclass(order=True, slots=True)
class _Arrival:
    ts_ms: int
    order: int
    origin: str = field(compare=False)
    net_g: int = field(compare=False)
    material: str = field(compare=False)
    plate: str = field(compare=False)
    tare_g: int = field(compare=False)


class CitySimulation:
    """Generates readings for consecutive hours; deterministic for a given seed and start hour."""

    def __init__(
        self,
        city: City,
        devices: list[SimDevice],
        *,
        seed: int,
        bin_interval_s: int,
        collection: str = "threshold",
        plan_time_limit_s: float = 5.0,
        plan_deterministic: bool = False,
    ) -> None:
        if city.simulation is None:
            raise ValueError(f"city {city.city.id} has no simulation section")
        self.city = city
        self.p = city.simulation
        self.seed = seed
        self.tz = ZoneInfo(city.city.timezone)
        self.bin_interval_ms = bin_interval_s * 1000
        sites = [s for s in city.all_sites() if s.active]
        by_site: dict[str, list[SimDevice]] = {}
        for d in devices:
            by_site.setdefault(d.site_id, []).append(d)

        def first(site_id: str, kind: DeviceKind) -> SimDevice | None:
            return next((d for d in by_site.get(site_id, []) if d.kind == kind), None)

        def weighing_device(site_id: str) -> SimDevice | None:
            return first(site_id, DeviceKind.WEIGHBRIDGE) or first(
                site_id, DeviceKind.PLATFORM_SCALE
            )

        p = self.p
        generation_g = p.generation_t_per_day.value * 1e6
        reduce_g = generation_g * p.reduced_share.value
        facility_input_g = p.processing.total_input_t_per_day.value * 1e6
        direct_facility_g = facility_input_g * (1 - p.processing.from_depot_share.value)
        depot_g = (
            generation_g * (1 - p.reduced_share.value - p.uncollected_share.value)
            - direct_facility_g
        )

        depot_sites = [s for s in sites if s.type == SiteType.DEPOT]
        weights = [0.6 + 0.8 * rng_for(seed, "weight", s.id).random() for s in depot_sites]
        total_w = sum(weights) or 1.0
        self.depot_daily_g = {
            s.id: depot_g * w / total_w for s, w in zip(depot_sites, weights, strict=True)
        }
        self.depots = [
            _Depot(
                s,
                weighing_device(s.id),
                first(s.id, DeviceKind.BIN_SENSOR),
                rng_for(seed, "depot", s.id),
                w,
                _plate(seed, s.id),
                battery=60 + 40 * rng_for(seed, "battery", s.id).random(),
                sale_rng=rng_for(seed, "recycler", s.id),
            )
            for s, w in zip(depot_sites, weights, strict=True)
        ]
        self.depot_by_id = {d.site.id: d for d in self.depots}

        facilities = [s for s in sites if s.type == SiteType.PROCESSING]
        caps = [s.capacity_t_per_day or 1.0 for s in facilities]
        total_cap = sum(caps) or 1.0
        self.facilities = []
        for s, cap in zip(facilities, caps, strict=True):
            near = [d.id for d in depot_sites if d.district == s.district] or [
                d.id for d in depot_sites
            ]
            self.facilities.append(
                _Facility(
                    s,
                    weighing_device(s.id),
                    rng_for(seed, "facility", s.id),
                    cap / total_cap,
                    near,
                    _plate(seed, s.id),
                )
            )

        units = [s for s in sites if s.type == SiteType.WASTE_BANK]
        hubs = [s for s in sites if s.type == SiteType.WASTE_BANK_HUB]
        hub_share = p.waste_bank.hub_share.value if hubs else 0.0
        self.unit_ids = [s.id for s in units]
        self.banks = [
            _Bank(
                s,
                weighing_device(s.id),
                rng_for(seed, "bank", s.id),
                reduce_g * (1 - hub_share) / max(1, len(units)),
            )
            for s in units
        ]
        self.banks += [
            _Bank(
                s,
                weighing_device(s.id),
                rng_for(seed, "bank", s.id),
                reduce_g * hub_share / len(hubs),
            )
            for s in hubs
        ]

        gates = [s for s in sites if s.type == SiteType.LANDFILL]
        self.gate_devices = [
            d for s in gates for d in by_site.get(s.id, []) if d.kind != DeviceKind.BIN_SENSOR
        ]
        self.gate_rng = rng_for(seed, "gate")
        self.arrivals: list[_Arrival] = []
        self._arrival_order = 0
        self.hourly = p.hourly_profile.values
        self.hourly_sum = sum(self.hourly)
        # Who empties the depots (simulators/collection.py); planned trucks draw from their own
        # stream, so the threshold rule (the default) simulates exactly as before.
        self.collect_rng = rng_for(seed, "collection")
        self.collection = Collection(
            self,
            collection,
            plan_time_limit_s=plan_time_limit_s,
            plan_deterministic=plan_deterministic,
        )

    # --- helpers -------------------------------------------------------------------------

    def _local(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, self.tz)

    def _weighing(
        self,
        device: SimDevice | None,
        ts_ms: int,
        net_g: int,
        material: str,
        stream: str,
        rng: random.Random,
        **extra: Any,
    ) -> Reading | None:
        if device is None or net_g <= 0:
            return None
        fields: dict[str, Any] = {"material": material, "stream": stream}
        if device.kind == DeviceKind.WEIGHBRIDGE:
            net_g = max(10_000, round(net_g, -4))  # weighbridges read in 10 kg steps
        else:
            net_g = max(10, round(net_g, -1))  # platform scales in 10 g steps
        fields["net_kg"] = _kg(net_g)
        fields.update({k: v for k, v in extra.items() if v is not None})
        if "tare_kg" in fields:
            fields["gross_kg"] = _kg(net_g + round(fields["tare_kg"] * 1000))
            fields["tare_kg"] = _kg(round(fields["tare_kg"] * 1000))
        if rng.random() < self.p.manual_ticket_share.value:
            fields["manual"] = True
        return Reading(device, ts_ms, fields, net_g)

    def _dispatch_time(self, depot: _Depot, from_ms: int) -> int:
        """When a truck comes: a delay after the container filled, moved into opening hours."""
        r = self.p.depot
        t = from_ms + int(
            depot.rng.uniform(r.collection_delay_h.low, r.collection_delay_h.high) * HOUR_MS
        )
        for _ in range(48):
            local = self._local(t)
            if _in_hours(local.hour + local.minute / 60, r.opening_hours):
                return t
            t += HOUR_MS // 2
        return t

    def _send_truck(self, depot: _Depot, ts_ms: int, out: list[Reading]) -> None:
        net_g = min(depot.load_g, MAX_TRUCK_G)
        depot.load_g -= net_g
        depot.truck_at_ms = None
        lf = self.p.landfill
        material = "food" if depot.rng.random() < lf.organic_truck_share.value else "mixed"
        tare_kg = round(depot.rng.uniform(lf.tare_kg.low, lf.tare_kg.high), -1)
        reading = self._weighing(
            depot.weighbridge,
            ts_ms,
            net_g,
            material,
            "to_landfill",
            depot.rng,
            tare_kg=tare_kg,
            vehicle_plate=depot.plate,
            origin_site_id=depot.site.id,
        )
        if reading:
            out.append(reading)
            net_g = reading.net_g
        travel_ms = int(depot.rng.uniform(lf.travel_h.low, lf.travel_h.high) * HOUR_MS)
        self._arrive(ts_ms + travel_ms, depot.site.id, net_g, material, depot.plate, tare_kg)
        self.collection.threshold_trip(depot, ts_ms, ts_ms + travel_ms, net_g)

    def _arrive(
        self, ts_ms: int, origin: str, net_g: int, material: str, plate: str, tare_kg: float
    ) -> None:
        self._arrival_order += 1
        heapq.heappush(
            self.arrivals,
            _Arrival(
                ts_ms, self._arrival_order, origin, net_g, material, plate, round(tare_kg * 1000)
            ),
        )

    # --- one hour --------------------------------------------------------------------------

    def hour(self, start_ms: int) -> list[Reading]:
        """All readings taken in [start_ms, start_ms + 1 h), sorted by time (seq not yet set)."""
        local = self._local(start_ms)
        lh = local.hour
        wf = self.p.weekday_factors.values[local.weekday()]
        hour_share = self.hourly[lh] / self.hourly_sum
        out: list[Reading] = []
        self.collection.start_hour(start_ms)
        self._facilities_hour(start_ms, local, wf, out)
        self._depots_hour(start_ms, wf, hour_share, out)
        self._banks_hour(start_ms, local, wf, out)
        self._gate_hour(start_ms, out)
        out.sort(key=lambda r: (r.ts_ms, r.device.device_id))
        return out

    def _depots_hour(self, start_ms: int, wf: float, hour_share: float, out: list[Reading]) -> None:
        p = self.p.depot
        container_g = p.container_t.value * 1e6
        threshold = self.city.city.bin_full_threshold
        mean_cart_g = _tri_mean(p.cart_kg) * 1000
        interval = self.bin_interval_ms
        picked_share = p.to_recycler_share.value if p.to_recycler_share else 0.0
        sale_hour = self._local(start_ms).hour == int(p.opening_hours.high) - 1
        collect = self.collection
        for depot in self.depots:
            rng = depot.rng
            expected_g = self.depot_daily_g[depot.site.id] * wf * hour_share
            n = poisson(rng, expected_g / mean_cart_g)
            events: list[tuple[int, int, float]] = []  # (ts, kind 0=cart 1=bin, kg)
            for _ in range(n):
                events.append((start_ms + rng.randrange(HOUR_MS), 0, _tri(rng, p.cart_kg)))
            if depot.bin is not None:
                first = -(-start_ms // interval) * interval
                events.extend((t, 1, 0.0) for t in range(first, start_ms + HOUR_MS, interval))
            events.extend(
                (t, 2, 0.0) for t in collect.pickups_in(depot, start_ms, start_ms + HOUR_MS)
            )
            by_threshold = collect.uses_threshold(depot)
            events.sort()
            for ts, kind, kg in events:
                if depot.truck_at_ms is not None and depot.truck_at_ms <= ts:
                    self._send_truck(depot, depot.truck_at_ms, out)
                if kind == 0:
                    separated = rng.random() < p.separated_share.value
                    material = _pick(rng, self.p.composition.shares) if separated else "mixed"
                    reading = self._weighing(
                        depot.weighbridge,
                        ts,
                        round(kg * 1000),
                        material,
                        "separated" if separated else "mixed",
                        rng,
                    )
                    if reading:
                        out.append(reading)
                    picked_g = round(kg * 1000 * picked_share)
                    depot.load_g += round(kg * 1000) - picked_g
                    depot.recyclable_g += picked_g
                    if (
                        by_threshold
                        and depot.truck_at_ms is None
                        and depot.load_g >= threshold * container_g
                    ):
                        depot.truck_at_ms = self._dispatch_time(depot, ts)
                elif kind == 1:
                    reading = self._bin_reading(depot, ts, container_g)
                    out.append(reading)
                    collect.record_fill(depot, ts, reading.fields["fill_pct"] / 100)
                else:
                    collect.pickup(depot, ts, out)
            if depot.truck_at_ms is not None and depot.truck_at_ms < start_ms + HOUR_MS:
                self._send_truck(depot, depot.truck_at_ms, out)
            collect.end_of_hour(depot, start_ms, container_g)
            if sale_hour and depot.recyclable_g > 0:
                self._sell_to_recycler(depot, start_ms, out)

    def _sell_to_recycler(self, depot: _Depot, start_ms: int, out: list[Reading]) -> None:
        """The day's picked-out recyclables leave the depot, weighed, sold to a recycler."""
        rng = depot.sale_rng or depot.rng
        material = _pick(rng, dict(self.p.waste_bank.materials.shares))
        reading = self._weighing(
            depot.weighbridge,
            start_ms + rng.randrange(HOUR_MS),
            depot.recyclable_g,
            material,
            "to_recycler",
            rng,
        )
        if reading:
            out.append(reading)
        depot.recyclable_g = 0

    def _bin_reading(self, depot: _Depot, ts: int, container_g: float) -> Reading:
        assert depot.bin is not None
        rng = depot.rng
        fill = min(1.0, max(0.0, depot.load_g / container_g + rng.gauss(0, 0.01)))
        depot.battery = max(
            0.0,
            depot.battery
            - self.p.bins.battery_drain_pct_per_day.value * self.bin_interval_ms / 86_400_000,
        )
        local = self._local(ts)
        temp = (
            24
            + 5 * math.sin((local.hour + local.minute / 60 - 9) / 24 * 2 * math.pi)
            + rng.gauss(0, 0.5)
        )
        fields: dict[str, Any] = {
            "fill_pct": round(fill * 100, 1),
            "battery_pct": round(depot.battery, 2),
            "temperature_c": round(temp, 1),
        }
        if rng.random() < 0.0005:
            fields["tilt"] = True
        if rng.random() < 0.005 and 6 <= local.hour < 20:
            fields["lid_open"] = True
        if rng.random() < 0.0001:
            fields["fire"] = True
        return Reading(depot.bin, ts, fields)

    def _facilities_hour(
        self, start_ms: int, local: datetime, wf: float, out: list[Reading]
    ) -> None:
        pp = self.p.processing
        open_hours = 10  # facilities take deliveries 07:00-17:00 local
        lf = self.p.landfill
        for fac in self.facilities:
            rng = fac.rng
            kind = fac.site.process_kind
            assert kind is not None
            if 7 <= local.hour < 17:
                expected_g = pp.total_input_t_per_day.value * 1e6 * fac.share * wf / open_hours
                for _ in range(poisson(rng, expected_g / (_tri_mean(pp.load_kg, 0.5) * 1000))):
                    ts = start_ms + rng.randrange(HOUR_MS)
                    material = _pick(rng, {m.value: s for m, s in pp.input_materials[kind].items()})
                    net_g = round(_tri(rng, pp.load_kg, 0.5) * 1000)
                    origin = None
                    if rng.random() < pp.from_depot_share.value and fac.depots:
                        origin = fac.depots[rng.randrange(len(fac.depots))]
                        depot = self.depot_by_id[origin]
                        depot.load_g = max(0, depot.load_g - net_g)
                    reading = self._weighing(
                        fac.scale, ts, net_g, material, "to_processing", rng, origin_site_id=origin
                    )
                    if reading:
                        out.append(reading)
                        fac.residue_g += round(reading.net_g * pp.residue_share.get(kind, 0.0))
            if local.hour == 16 and fac.residue_g >= lf.residue_truck_kg.value * 1000:
                ts = start_ms + rng.randrange(HOUR_MS)
                tare_kg = round(rng.uniform(lf.tare_kg.low, lf.tare_kg.high), -1)
                reading = self._weighing(
                    fac.scale,
                    ts,
                    fac.residue_g,
                    "residual",
                    "to_landfill",
                    rng,
                    tare_kg=tare_kg,
                    vehicle_plate=fac.plate,
                    origin_site_id=fac.site.id,
                )
                net_g = fac.residue_g
                if reading:
                    out.append(reading)
                    net_g = reading.net_g
                fac.residue_g = 0
                travel_ms = int(rng.uniform(lf.travel_h.low, lf.travel_h.high) * HOUR_MS)
                self._arrive(ts + travel_ms, fac.site.id, net_g, "residual", fac.plate, tare_kg)

    def _banks_hour(self, start_ms: int, local: datetime, wf: float, out: list[Reading]) -> None:
        wb = self.p.waste_bank
        if not _in_hours(local.hour, wb.opening_hours):
            return
        open_hours = max(1.0, wb.opening_hours.high - wb.opening_hours.low)
        mean_g = _tri_mean(wb.deposit_kg) * 1000
        materials = dict(wb.materials.shares)
        for bank in self.banks:
            rng = bank.rng
            for _ in range(poisson(rng, bank.daily_g * wf / open_hours / mean_g)):
                material = _pick(rng, materials)
                price = wb.price_rp_per_kg.get(material, 0.0) * rng.uniform(0.9, 1.1)
                reading = self._weighing(
                    bank.scale,
                    start_ms + rng.randrange(HOUR_MS),
                    round(_tri(rng, wb.deposit_kg) * 1000),
                    material,
                    "deposit",
                    rng,
                    price_per_kg=round(price),
                )
                if reading:
                    out.append(reading)
            if bank.site.type == SiteType.WASTE_BANK_HUB and self.unit_ids:
                for _ in range(poisson(rng, wb.hub_transfers_per_day.value / open_hours)):
                    origin = self.unit_ids[rng.randrange(len(self.unit_ids))]
                    reading = self._weighing(
                        bank.scale,
                        start_ms + rng.randrange(HOUR_MS),
                        round(rng.uniform(wb.hub_transfer_kg.low, wb.hub_transfer_kg.high) * 1000),
                        _pick(rng, materials),
                        "deposit",
                        rng,
                        origin_site_id=origin,
                    )
                    if reading:
                        out.append(reading)

    def _gate_hour(self, start_ms: int, out: list[Reading]) -> None:
        end = start_ms + HOUR_MS
        while self.arrivals and self.arrivals[0].ts_ms < end:
            a = heapq.heappop(self.arrivals)
            if not self.gate_devices:
                continue
            device = self.gate_devices[self.gate_rng.randrange(len(self.gate_devices))]
            reading = self._weighing(
                device,
                max(a.ts_ms, start_ms),
                a.net_g,
                a.material,
                "to_landfill",
                self.gate_rng,
                tare_kg=a.tare_g / 1000,
                vehicle_plate=a.plate,
                origin_site_id=a.origin,
            )
            if reading:
                out.append(reading)


def _kg(grams: int) -> float:
    """Grams as a kg number whose JSON text is exact (at most 3 decimals)."""
    return round(grams / 1000, 3)


def _plate(seed: int, site_id: str) -> str:
    rng = rng_for(seed, "plate", site_id)
    letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
    return f"D {rng.randrange(8000, 9999)} {letters}"


def utc_iso(ts_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, as devices send it."""
    dt = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
