"""Faults a simulated device can show, and how they turn readings into the messages it actually sends."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from simulators.behaviour import Reading, rng_for, utc_iso
from simulators.devices import SimDevice

FAULT_NAMES = ("dup", "reorder", "offline", "malformed", "skew", "noise", "outlier")
HOUR_MS = 3_600_000
FLUSH_BATCH = 50  # readings per message when a device flushes its store-and-forward backlog

# How often each fault strikes when switched on (per message, per reading, or per device-hour).
DUP_PER_MESSAGE = 0.01
REORDER_PER_MESSAGE = 0.02
OFFLINE_PER_DEVICE_HOUR = 1 / (24 * 4)  # about one outage per device every four days
OFFLINE_HOURS = (2.0, 8.0)
MALFORMED_PER_READING = 0.004
OUTLIER_PER_READING = 0.003
SKEWED_DEVICE_SHARE = 0.3
SKEW_MS = (-15 * 60_000, 2 * 60_000)  # ingest refuses more than 300 s in the future
NOISE_WEIGHT_SD = 0.01
NOISE_FILL_SD_PCT = 3.0


class FaultSpecError(ValueError):
    """An unknown fault name on the command line."""


def parse_faults(spec: str) -> frozenset[str]:
    """`none`, `all`, or a comma list of fault names."""
    spec = spec.strip().lower()
    if spec in ("", "none"):
        return frozenset()
    if spec == "all":
        return frozenset(FAULT_NAMES)
    names = {s.strip() for s in spec.split(",") if s.strip()}
    unknown = sorted(names - set(FAULT_NAMES))
    if unknown:
        raise FaultSpecError(
            f"unknown fault(s) {', '.join(unknown)}; use none, all or {','.join(FAULT_NAMES)}"
        )
    return frozenset(names)


@dataclass(slots=True)
class OutMessage:
    """One MQTT message to publish, and what it carries for the report."""

    publish_ms: int
    device: SimDevice
    payload: bytes
    readings: list[Reading] = field(default_factory=list)  # valid readings inside
    invalid_reason: str | None = None
    duplicate: bool = False


@dataclass(slots=True)
class _DeviceFaults:
    device: SimDevice
    rng: random.Random
    skew_ms: int
    offline_until_ms: int = 0
    checked_hour: int = -1
    backlog: list[tuple[Reading | None, OutMessage | None]] = field(default_factory=list)


def _render(reading: Reading, ts_ms: int) -> dict[str, Any]:
    reading.sent_ms = ts_ms
    return {"ts": utc_iso(ts_ms), "seq": reading.seq, **reading.fields}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class FaultInjector:
    """Applies the switched-on faults device by device; counts every fault it injects."""

    def __init__(self, faults: frozenset[str], seed: int) -> None:
        self.faults = faults
        self.seed = seed
        self.state: dict[str, _DeviceFaults] = {}
        self.counts: dict[str, int] = {name: 0 for name in FAULT_NAMES}

    def _state(self, device: SimDevice) -> _DeviceFaults:
        st = self.state.get(device.device_id)
        if st is None:
            rng = rng_for(self.seed, "faults", device.device_id)
            skew = 0
            if "skew" in self.faults and rng.random() < SKEWED_DEVICE_SHARE:
                skew = rng.randint(*SKEW_MS)
                self.counts["skew"] += 1
            st = self.state[device.device_id] = _DeviceFaults(device, rng, skew)
        return st

    def messages(
        self, device: SimDevice, readings: list[Reading], *, batch: int, slice_end_ms: int
    ) -> list[OutMessage]:
        """Turn one device's readings of a time slice (time order, seq set) into messages."""
        st = self._state(device)
        f = self.faults
        out: list[OutMessage] = []
        pending: list[Reading] = []  # valid readings waiting to be batched

        def flush_pending() -> None:
            for i in range(0, len(pending), batch):
                chunk = pending[i : i + batch]
                body = [_render(r, r.ts_ms + st.skew_ms) for r in chunk]
                payload = _dumps(body if batch > 1 else body[0])
                out.append(
                    OutMessage(
                        chunk[-1].ts_ms if batch == 1 else slice_end_ms, device, payload, chunk
                    )
                )
            pending.clear()

        for r in readings:
            if "offline" in f:
                self._maybe_go_offline(st, r.ts_ms)
                if st.offline_until_ms and r.ts_ms >= st.offline_until_ms:
                    flush_pending()
                    out.extend(self._flush_backlog(device, st))
            if "noise" in f:
                self._noise(st.rng, r)
            invalid = self._corrupt(st.rng, r, st.skew_ms)
            if st.offline_until_ms and r.ts_ms < st.offline_until_ms:
                st.backlog.append((None, invalid) if invalid else (r, None))
                continue
            if invalid:
                flush_pending()
                out.append(invalid)
            else:
                pending.append(r)
        flush_pending()
        return self._dup_and_reorder(st, out)

    def drain(self, end_ms: int) -> list[OutMessage]:
        """At the end of a run: every device still offline comes back and flushes its backlog."""
        out: list[OutMessage] = []
        for st in self.state.values():
            if st.backlog:
                st.offline_until_ms = (
                    min(st.offline_until_ms, end_ms) if st.offline_until_ms else end_ms
                )
                out.extend(self._flush_backlog(st.device, st))
        return out

    def _maybe_go_offline(self, st: _DeviceFaults, ts_ms: int) -> None:
        hour = ts_ms // HOUR_MS
        if hour == st.checked_hour:
            return
        st.checked_hour = hour
        if st.offline_until_ms > ts_ms or st.backlog:
            return
        if st.rng.random() < OFFLINE_PER_DEVICE_HOUR:
            st.offline_until_ms = ts_ms + int(st.rng.uniform(*OFFLINE_HOURS) * HOUR_MS)
            self.counts["offline"] += 1

    def _flush_backlog(self, device: SimDevice, st: _DeviceFaults) -> list[OutMessage]:
        """Store-and-forward: the backlog goes out in batches when the device is back."""
        at = st.offline_until_ms
        out: list[OutMessage] = []
        valid = [r for r, _ in st.backlog if r is not None]
        for i in range(0, len(valid), FLUSH_BATCH):
            chunk = valid[i : i + FLUSH_BATCH]
            out.append(
                OutMessage(
                    at, device, _dumps([_render(r, r.ts_ms + st.skew_ms) for r in chunk]), chunk
                )
            )
        for _, bad in st.backlog:
            if bad is not None:
                bad.publish_ms = at
                out.append(bad)
        st.backlog.clear()
        st.offline_until_ms = 0
        return out

    def _noise(self, rng: random.Random, r: Reading) -> None:
        fields = r.fields
        if "fill_pct" in fields:
            fields["fill_pct"] = round(
                min(100.0, max(0.0, fields["fill_pct"] + rng.gauss(0, NOISE_FILL_SD_PCT))), 1
            )
        elif "net_kg" in fields:
            step = 10_000 if "gross_kg" in fields else 10
            net_g = max(step, round(r.net_g * (1 + rng.gauss(0, NOISE_WEIGHT_SD)) / step) * step)
            if "gross_kg" in fields:
                fields["gross_kg"] = round((net_g + round(fields["tare_kg"] * 1000)) / 1000, 3)
            fields["net_kg"] = round(net_g / 1000, 3)
            r.net_g = net_g
        self.counts["noise"] += 1

    def _corrupt(self, rng: random.Random, r: Reading, skew_ms: int) -> OutMessage | None:
        """Replace a reading by an invalid payload (outlier or malformed), or return None."""
        if "outlier" in self.faults and rng.random() < OUTLIER_PER_READING:
            body = _render(r, r.ts_ms + skew_ms)
            if "fill_pct" in body:
                body["fill_pct"] = round(100 + rng.uniform(5, 200), 1)
            else:
                for key in ("gross_kg", "tare_kg"):
                    body.pop(key, None)
                body["net_kg"] = round(60_000 + rng.uniform(1, 40_000), 1)
            self.counts["outlier"] += 1
            return OutMessage(r.ts_ms, r.device, _dumps(body), invalid_reason="outlier")
        if "malformed" in self.faults and rng.random() < MALFORMED_PER_READING:
            body = _render(r, r.ts_ms + skew_ms)
            how = ("not_json", "missing_field", "bad_value", "wrong_type")[rng.randrange(4)]
            if how == "not_json":
                payload = _dumps(body)[: -rng.randint(2, 12)]
            else:
                if how == "missing_field":
                    del body["ts"]
                elif how == "bad_value":
                    body["material" if "material" in body else "fill_pct"] = (
                        "banana" if "material" in body else "full"
                    )
                else:
                    body["seq"] = f"#{body['seq']}"
                payload = _dumps(body)
            self.counts["malformed"] += 1
            return OutMessage(r.ts_ms, r.device, payload, invalid_reason=how)
        return None

    def _dup_and_reorder(self, st: _DeviceFaults, msgs: list[OutMessage]) -> list[OutMessage]:
        if "reorder" in self.faults:
            for i in range(len(msgs) - 1):
                if st.rng.random() < REORDER_PER_MESSAGE:
                    a, b = msgs[i], msgs[i + 1]
                    # The later message overtakes the earlier one on the way to the broker.
                    a.publish_ms, b.publish_ms = (
                        max(a.publish_ms, b.publish_ms) + 1,
                        min(a.publish_ms, b.publish_ms),
                    )
                    msgs[i], msgs[i + 1] = b, a
                    self.counts["reorder"] += 1
        if "dup" in self.faults:
            extra = []
            for m in msgs:
                if m.invalid_reason is None and st.rng.random() < DUP_PER_MESSAGE:
                    extra.append(
                        OutMessage(
                            m.publish_ms + st.rng.randrange(1, 600_000),
                            m.device,
                            m.payload,
                            m.readings,
                            duplicate=True,
                        )
                    )
                    self.counts["dup"] += 1
            msgs.extend(extra)
        return msgs
