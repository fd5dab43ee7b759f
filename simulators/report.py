"""What a simulator run published: per device and kind, valid/duplicate/invalid counts, and category totals."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from simulators.categories import MEASURES, classify
from simulators.faults import OutMessage


@dataclass(slots=True)
class _DeviceCounts:
    kind: str
    valid: int = 0
    duplicates_sent: int = 0
    invalid: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seqs: list[int] = field(default_factory=list)
    status_sent: int = 0


def seq_ranges(seqs: list[int]) -> list[list[int]]:
    """Sorted sequence numbers as inclusive [first, last] runs."""
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def expand_ranges(ranges: list[list[int]]) -> set[int]:
    """The inverse of seq_ranges."""
    return {s for a, b in ranges for s in range(a, b + 1)}


class Report:
    """Accumulates exactly what went out, message by message, as the broker acknowledged it."""

    def __init__(
        self, *, city_id: str, timezone: str, site_types: dict[str, str], meta: dict[str, Any]
    ) -> None:
        self.city_id = city_id
        self.tz = ZoneInfo(timezone)
        self.site_types = site_types
        self.meta = meta
        self.devices: dict[str, _DeviceCounts] = {}
        self.days: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
        self.messages = 0
        self.fault_counts: dict[str, int] = {}
        self.elapsed_s: float | None = None
        # Store-and-forward, per device: confirmed, confirmed_quarantined, resent, pending.
        self.delivery: dict[str, dict[str, int]] | None = None

    def _device(self, device_id: str, kind: str) -> _DeviceCounts:
        d = self.devices.get(device_id)
        if d is None:
            d = self.devices[device_id] = _DeviceCounts(kind)
        return d

    def published(self, msg: OutMessage) -> None:
        """Count one published message."""
        self.messages += 1
        dev = msg.device
        counts = self._device(dev.device_id, dev.reading_kind)
        if msg.invalid_reason is not None:
            counts.invalid[msg.invalid_reason] += 1
            return
        if msg.duplicate:
            counts.duplicates_sent += len(msg.readings)
            return
        counts.valid += len(msg.readings)
        counts.seqs.extend(r.seq for r in msg.readings)
        if dev.reading_kind != "weighing":
            return
        site_type = self.site_types[dev.site_id]
        for r in msg.readings:
            origin = r.fields.get("origin_site_id")
            own = origin is not None and origin in self.site_types
            c = classify(site_type, r.fields["stream"], r.fields["material"], own, r.net_g)
            day = datetime.fromtimestamp(r.sent_ms / 1000, self.tz).date().isoformat()
            totals = self.days[day]
            for m in MEASURES:
                totals[m] += getattr(c, m)

    def status(self, device_id: str, kind: str) -> None:
        """Count one status message."""
        self.messages += 1
        self._device(device_id, kind).status_sent += 1

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data; masses in kg as exact decimal strings."""
        devices = {}
        for device_id in sorted(self.devices):
            d = self.devices[device_id]
            devices[device_id] = {
                "kind": d.kind,
                "valid": d.valid,
                "duplicates_sent": d.duplicates_sent,
                "invalid": dict(sorted(d.invalid.items())),
                "invalid_total": sum(d.invalid.values()),
                "status_sent": d.status_sent,
                "valid_seq_ranges": seq_ranges(d.seqs),
                **((self.delivery or {}).get(device_id) or {}),
            }
        totals = {
            "valid": sum(d.valid for d in self.devices.values()),
            "duplicates_sent": sum(d.duplicates_sent for d in self.devices.values()),
            "invalid": sum(sum(d.invalid.values()) for d in self.devices.values()),
            "status_sent": sum(d.status_sent for d in self.devices.values()),
            "messages": self.messages,
        }
        if self.delivery is not None:
            for name in ("confirmed", "confirmed_quarantined", "resent", "pending"):
                totals[name] = sum(d[name] for d in self.delivery.values())
        categories = {
            day: {m: str(Decimal(g) / 1000) for m, g in self.days[day].items()}
            for day in sorted(self.days)
        }
        return {
            "city_id": self.city_id,
            **self.meta,
            "elapsed_s": self.elapsed_s,
            "totals": totals,
            "faults_injected": dict(sorted(self.fault_counts.items())),
            "categories_kg_by_local_day": categories,
            "category_rules": "default category_map rules of sql/003, re-implemented in simulators/categories.py",
            "devices": devices,
        }

    def write(self, path: Path) -> None:
        """Write the report as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
