"""Commit acknowledgements: after a batch commits, tell each device which of its readings are safe."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.topics import ack_topic
from ingest.validate import Rejection, Validated

# One short, stable code per class of quarantine reason (docs/protocol.md lists them): a device
# acts on the code, a person reads the full reason in the quarantine. Each pattern matches the
# start of a reason as ingest/validate.py words it (after a batch's "reading N of M: "), never the
# device's own text quoted further on.
REASON_CODES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), code)
    for pattern, code in (
        (r"database refused the message", "db_refused"),
        (r"could not validate the message", "error"),
        (r"status must be", "bad_status"),
        (r"unknown device ", "unknown_device"),
        (r"device '[^']*' belongs to site ", "wrong_site"),
        (r"device '[^']*' is deactivated", "deactivated"),
        (r"an? \S+ does not send ", "wrong_kind"),
        (r"message of \d+ bytes: the limit is", "too_large"),
        (r"\S+ readings in one message", "too_many"),
        (r"empty array", "empty"),
        (r"not valid JSON", "not_json"),
        (r"timestamp \S+ is more than \d+ s in the future", "future_ts"),
        (r"timestamp \S+ is before 2000", "clock_unset"),
    )
)
_IN_A_BATCH = re.compile(r"reading \d+ of \d+: ")
INVALID = "invalid"  # anything else: a field missing, of the wrong type or out of range
MAX_KEYED_BYTES = 4096
DIGEST_BYTES = 8  # of a message's SHA-256: identifies a message a device still holds


def reason_code(reason: str) -> str:
    """The short code of a quarantine reason."""
    prefix = _IN_A_BATCH.match(reason)
    text = reason[prefix.end() :] if prefix else reason
    for pattern, code in REASON_CODES:
        if pattern.match(text):
            return code
    return INVALID


def message_digest(payload: bytes) -> str:
    """How an ack names a whole message: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(payload).digest()[:DIGEST_BYTES].hex()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since 1970 (UTC), rounded down: the time half of a reading's key in an ack."""
    if ts.tzinfo is None:  # a naive time is local time, as datetime.astimezone reads it
        ts = ts.astimezone(UTC)
    return (ts - EPOCH) // ONE_MS  # exact integer arithmetic on timedeltas


@dataclass(slots=True)
class DeviceAck:
    """What one batch did with one device's readings."""

    stored: set[tuple[int, int]] = field(default_factory=set)  # (seq, ts_ms)
    quarantined: list[list[Any]] = field(default_factory=list)  # [code, seq, ts_ms, digest]

    def payload(self) -> bytes:
        """The compact JSON body: {"ok": runs, "bad": entries}."""
        body: dict[str, Any] = {}
        if self.stored:
            body["ok"] = runs(self.stored)
        if self.quarantined:
            body["bad"] = self.quarantined
        return json.dumps(body, separators=(",", ":")).encode()


def runs(keys: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Reading keys as runs of consecutive seq: [first_seq, first_ts_ms, Δts_ms, Δts_ms, …].

    A run's n-th element (n ≥ 1) is the reading seq = first_seq + n - 1, stamped at the running
    sum of the time elements: every key is exact, so a seq that restarted after a reboot (the
    same seq at another time) is never confirmed by mistake. Readings a few minutes apart cost
    about 7 bytes each.
    """
    out: list[list[int]] = []
    last_seq = last_ts = 0
    for seq, ts in sorted(keys):
        if out and seq == last_seq + 1:
            out[-1].append(ts - last_ts)
        else:
            out.append([seq, ts])
        last_seq, last_ts = seq, ts
    return out


def expand_runs(encoded: Sequence[Sequence[int]]) -> set[tuple[int, int]]:
    """The (seq, ts_ms) keys a list of runs names (the inverse of runs())."""
    keys: set[tuple[int, int]] = set()
    for run in encoded:
        seq, ts = run[0], run[1]
        keys.add((seq, ts))
        for delta in run[2:]:
            seq, ts = seq + 1, ts + delta
            keys.add((seq, ts))
    return keys


def _reading_key(raw: bytes) -> tuple[int | None, int | None]:
    """The (seq, ts_ms) a quarantined reading names, when both can be read (never raises)."""
    try:
        decoded = json.loads(raw)
        if not isinstance(decoded, dict):
            return None, None
        seq, ts = decoded.get("seq"), decoded.get("ts")
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ts, str):
            return None, None
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return None, None
        return seq, epoch_ms(parsed)
    except Exception:  # whatever a device sent: the message digest still names it
        return None, None


def _quarantine_entry(r: Rejection, message: bytes) -> list[Any]:
    """[code, seq, ts_ms, digest]: seq and ts_ms null when the reading cannot be read (a whole
    message refused, not JSON, a seq that is not a number): then the digest names the message."""
    # A reading is a few hundred bytes; a longer payload is a whole message refused unread.
    seq, ts = _reading_key(r.payload) if len(r.payload) <= MAX_KEYED_BYTES else (None, None)
    return [reason_code(r.reason), seq, ts, message_digest(message)]


def build_acks(written: Iterable[tuple[str, bytes, Validated]]) -> list[tuple[str, bytes]]:
    """One (ack topic, payload) per device that had readings in the committed messages
    (topic, payload, validated); status messages and topics naming no device get none."""
    per_device: dict[tuple[str, str], DeviceAck] = defaultdict(DeviceAck)
    for _topic, payload, validated in written:
        for rows in (validated.weighings, validated.bins):
            for row in rows:
                ts = row.ts
                # Validation hands over UTC times; epoch_ms() also reads other zones.
                ms = (ts - EPOCH) // ONE_MS if ts.tzinfo is UTC else epoch_ms(ts)
                per_device[row.site_id, row.device_id].stored.add((row.seq, ms))
        for r in validated.rejections:
            if r.kind == "status" or r.site_id is None or r.device_id is None:
                continue
            per_device[r.site_id, r.device_id].quarantined.append(_quarantine_entry(r, payload))
    return [(ack_topic(site, device), ack.payload()) for (site, device), ack in per_device.items()]
