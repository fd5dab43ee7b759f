"""A simulator run: generate the city's readings, inject faults, publish them in time order, report."""

from __future__ import annotations

import heapq
import itertools
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tqdm import tqdm

from pisman.citydata import City
from pisman.devices import device_topic
from pisman.logs import log_event
from simulators.behaviour import HOUR_MS, CitySimulation, Reading
from simulators.devices import SimDevice
from simulators.faults import FaultInjector, OutMessage
from simulators.publisher import Publisher
from simulators.report import Report

log = logging.getLogger(__name__)
Mode = Literal["realtime", "accelerated", "backfill"]
BACKFILL_SLICE_HOURS = 6  # backfill batches each device's readings per 6-hour slice
BACKFILL_BATCH = 100  # at most this many readings per backfill message


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What to simulate and how fast."""

    mode: Mode
    seed: int
    faults: frozenset[str]
    days: float = 30.0
    end_ms: int | None = None  # backfill: last instant (exclusive); default now
    speed: float = 1.0
    duration_s: float | None = None
    bin_interval_s: int | None = None
    batch: int | None = None  # backfill: most readings per message
    progress: bool = True
    wait_confirmed_s: float = 0.0  # store-and-forward: wait this long for every commit ack
    collection: str = "threshold"  # who empties the depots (simulators/collection.py)
    plan_time_limit_s: float = 5.0
    plan_deterministic: bool = False


def _now_ms() -> int:
    return int(time.time() * 1000)


class Simulator:
    """Drives one run: CitySimulation → FaultInjector → Publisher, counted by Report."""

    def __init__(
        self, city: City, devices: list[SimDevice], publisher: Publisher, opts: RunOptions
    ) -> None:
        assert city.simulation is not None
        self.city = city
        self.devices = devices
        self.publisher = publisher
        self.opts = opts
        bins = city.simulation.bins
        interval = opts.bin_interval_s or (
            bins.backfill_interval_s if opts.mode == "backfill" else bins.interval_s
        )
        self.sim = CitySimulation(
            city,
            devices,
            seed=opts.seed,
            bin_interval_s=interval,
            collection=opts.collection,
            plan_time_limit_s=opts.plan_time_limit_s,
            plan_deterministic=opts.plan_deterministic,
        )
        self.faults = FaultInjector(opts.faults, opts.seed)
        self.topics = {
            d.device_id: device_topic(d.site_id, d.device_id, d.reading_kind) for d in devices
        }
        self.status_topics = {
            d.device_id: device_topic(d.site_id, d.device_id, "status") for d in devices
        }
        self.heap: list[tuple[int, int, OutMessage]] = []
        self.counter = itertools.count()
        self.seq: dict[str, int] = {}
        self.report = Report(
            city_id=city.city.id,
            timezone=city.city.timezone,
            site_types={s.id: s.type.value for s in city.all_sites()},
            meta={
                "mode": opts.mode,
                "seed": opts.seed,
                "faults": sorted(opts.faults),
                "bin_interval_s": interval,
            },
        )

    # --- generation ----------------------------------------------------------------------

    def _generate(
        self, hour_ms: int, lo_ms: int, hi_ms: int, per_device: dict[str, list[Reading]]
    ) -> None:
        for r in self.sim.hour(hour_ms):
            if lo_ms <= r.ts_ms < hi_ms:
                device_id = r.device.device_id
                r.seq = self.seq.setdefault(device_id, lo_ms // 1000)
                self.seq[device_id] = r.seq + 1
                per_device[device_id].append(r)

    def _schedule(
        self, per_device: dict[str, list[Reading]], *, batch: int, slice_end_ms: int
    ) -> None:
        by_id = {d.device_id: d for d in self.devices}
        for device_id in sorted(per_device):
            for m in self.faults.messages(
                by_id[device_id], per_device[device_id], batch=batch, slice_end_ms=slice_end_ms
            ):
                heapq.heappush(self.heap, (m.publish_ms, next(self.counter), m))

    def _publish_due(self, until_ms: int | None) -> int:
        n = 0
        while self.heap and (until_ms is None or self.heap[0][0] < until_ms):
            _, _, m = heapq.heappop(self.heap)
            # Every message is held until its commit ack (if the publisher does store-and-forward):
            # a valid one by its readings' keys, an invalid one by its digest.
            keys = [(r.seq, r.sent_ms) for r in m.readings] if m.invalid_reason is None else []
            self.publisher.publish(
                m.device.device_id, self.topics[m.device.device_id], m.payload, keys=keys
            )
            self.report.published(m)
            n += 1
        return n

    def _statuses(self, text: bytes) -> None:
        for d in self.devices:
            self.publisher.publish(d.device_id, self.status_topics[d.device_id], text, retain=True)
            self.report.status(d.device_id, d.reading_kind)

    # --- modes ---------------------------------------------------------------------------

    def backfill(self) -> Report:
        """Publish `days` of history ending at end_ms as fast as the broker acknowledges it."""
        end_ms = self.opts.end_ms if self.opts.end_ms is not None else _now_ms()
        start_ms = (end_ms - int(self.opts.days * 24 * HOUR_MS)) // HOUR_MS * HOUR_MS
        hours = range(start_ms, end_ms, HOUR_MS)
        started = time.monotonic()
        bar = tqdm(
            total=len(hours),
            unit="h",
            desc=f"backfill {self.city.city.id}",
            file=sys.stderr,
            disable=not self.opts.progress,
            dynamic_ncols=True,
        )
        with bar:
            for slice_start in range(start_ms, end_ms, BACKFILL_SLICE_HOURS * HOUR_MS):
                slice_end = min(end_ms, slice_start + BACKFILL_SLICE_HOURS * HOUR_MS)
                per_device: dict[str, list[Reading]] = defaultdict(list)
                for hour_ms in range(slice_start, slice_end, HOUR_MS):
                    self._generate(hour_ms, start_ms, end_ms, per_device)
                    bar.update(1)
                self._schedule(
                    per_device, batch=self.opts.batch or BACKFILL_BATCH, slice_end_ms=slice_end
                )
                self._publish_due(slice_end)
                bar.set_postfix(msgs=self.report.messages, refresh=False)
            for m in self.faults.drain(end_ms):
                heapq.heappush(self.heap, (m.publish_ms, next(self.counter), m))
            self._publish_due(None)
            self.publisher.flush()
            self._wait_confirmed()
        self._finish(started, start_ms, end_ms)
        return self.report

    def live(self, stop: Callable[[], bool] | None = None) -> Report:
        """Publish in real time (speed 1) or accelerated (×speed) until duration elapses or stop() is true."""
        speed = 1.0 if self.opts.mode == "realtime" else max(self.opts.speed, 0.001)
        wall0 = time.monotonic()
        sim0 = self.opts.end_ms if self.opts.end_ms is not None else _now_ms()
        started = wall0

        def sim_now() -> int:
            return sim0 + int((time.monotonic() - wall0) * speed * 1000)

        self._statuses(b"online")
        next_hour = sim0 // HOUR_MS * HOUR_MS
        try:
            while True:
                if (
                    self.opts.duration_s is not None
                    and time.monotonic() - wall0 >= self.opts.duration_s
                ):
                    break
                if stop is not None and stop():
                    break
                now = sim_now()
                while next_hour <= now + HOUR_MS // 4:  # generate a little ahead of the clock
                    per_device: dict[str, list[Reading]] = defaultdict(list)
                    self._generate(next_hour, sim0, next_hour + HOUR_MS, per_device)
                    self._schedule(per_device, batch=1, slice_end_ms=next_hour + HOUR_MS)
                    next_hour += HOUR_MS
                self._publish_due(now)
                wait_ms = (self.heap[0][0] - now) if self.heap else 500 * speed
                time.sleep(min(0.5, max(0.005, wait_ms / 1000 / speed)))
        except KeyboardInterrupt:
            log_event(log, logging.INFO, "simulate_interrupted")
        self._statuses(b"offline")
        self.publisher.flush()
        self._wait_confirmed()
        self._finish(started, sim0, sim_now())
        return self.report

    def _wait_confirmed(self) -> None:
        if self.opts.wait_confirmed_s > 0 and self.publisher.saf is not None:
            left = self.publisher.wait_confirmed(self.opts.wait_confirmed_s)
            log_event(log, logging.INFO, "simulate_confirmed", still_pending=left)

    def _finish(self, started: float, start_ms: int, end_ms: int) -> None:
        elapsed = time.monotonic() - started
        if self.publisher.saf is not None:
            self.report.delivery = self.publisher.delivery()
        self.report.fault_counts = dict(self.faults.counts)
        self.report.meta.update(
            start=datetime.fromtimestamp(start_ms / 1000, UTC).isoformat(),
            end=datetime.fromtimestamp(end_ms / 1000, UTC).isoformat(),
            devices=len(self.devices),
        )
        self.report.elapsed_s = round(elapsed, 2)
        log_event(
            log,
            logging.INFO,
            "simulate_done",
            mode=self.opts.mode,
            messages=self.report.messages,
            elapsed_s=round(elapsed, 2),
        )
