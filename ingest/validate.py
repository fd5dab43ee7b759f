"""Payload validation, pure: topic + raw bytes + registry snapshot + now → rows to store, or reasons."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ingest.reasons import MAX_QUOTED_CHARS, bounded, quoted
from ingest.registry import KnownDevice, RegistrySnapshot
from ingest.topics import DeviceTopic, TopicError, parse_topic
from pisman.domain import ID_PATTERN, MAX_WEIGHING_KG, DeviceKind, Material, ReadingKind, Stream

# A device clock this far in the past is broken, not late (and would land in nonsense buckets).
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
# A net mass may differ from gross - tare by rounding on the scale's display, not more.
NET_TOLERANCE_KG = Decimal("1")
SEQ_MAX = 2**63 - 1
# A message larger than this is quarantined whole, unread (the broker's message_size_limit,
# 262144 in every config we ship, normally refuses it first).
MAX_MESSAGE_BYTES = 262_144
# A batch (JSON array) holding more readings than this is quarantined whole, as one row.
MAX_READINGS = 1000
# A reason lists this many problems of one reading at most (20,000 unknown keys fit in 256 KiB).
MAX_DESCRIBED_ERRORS = 10
# Free text from a device: printable characters only (a NUL would be refused by PostgreSQL).
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"
KINDS_BY_DEVICE: dict[str, frozenset[ReadingKind]] = {
    DeviceKind.WEIGHBRIDGE: frozenset({ReadingKind.WEIGHING, ReadingKind.STATUS}),
    DeviceKind.PLATFORM_SCALE: frozenset({ReadingKind.WEIGHING, ReadingKind.STATUS}),
    DeviceKind.BIN_SENSOR: frozenset({ReadingKind.BIN, ReadingKind.STATUS}),
}

PATTERN_MEANING = {
    PRINTABLE: "must not contain control characters",
    ID_PATTERN: "is not a valid id (lowercase letters, digits, - and _)",
}


def _json_number(value: Any) -> Any:
    """Numbers must be JSON numbers: pydantic would otherwise turn "12.5" into 12.5."""
    if value.__class__ is str:
        raise PydanticCustomError("json_number", "must be a JSON number, not a string")
    return value


def _iso_timestamp(value: Any) -> Any:
    """Timestamps must be ISO-8601 text: pydantic would otherwise read 1748779140 or "1748779140"
    as seconds since 1970."""
    if value.__class__ is not str or value[4:5] != "-":
        raise PydanticCustomError(
            "iso_timestamp",
            "must be an ISO-8601 string with a UTC offset, e.g. 2025-01-31T08:00:00Z",
        )
    return value


Seq = Annotated[
    int, Field(ge=0, le=SEQ_MAX, strict=True, description="Per-device sequence number.")
]
Flag = Annotated[bool, Field(strict=True)]
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_timestamp)]
# Numbers: the bounds first, then the JSON-number check, in this order inside Annotated; it costs
# about 0.25 µs a field (measured; the reverse order, or the check inside `X | None`, costs 0.6).
NetKg = Annotated[Decimal | None, Field(ge=0, le=MAX_WEIGHING_KG), BeforeValidator(_json_number)]
Kg = Annotated[Decimal | None, Field(ge=0, le=1_000_000), BeforeValidator(_json_number)]
Price = Annotated[Decimal | None, Field(ge=0, le=10_000_000), BeforeValidator(_json_number)]
Percent = Annotated[Decimal | None, Field(ge=0, le=100), BeforeValidator(_json_number)]
Ratio = Annotated[Decimal | None, Field(ge=0, le=1), BeforeValidator(_json_number)]
Celsius = Annotated[Decimal | None, Field(ge=-50, le=200), BeforeValidator(_json_number)]
Plate = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20, pattern=PRINTABLE)
]


class WeighingPayload(BaseModel):
    """One weighing as a device sends it (topic kind `weighing`)."""

    # use_enum_values: material and stream are kept as their plain text (what is stored).
    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, title="Weighing", use_enum_values=True
    )

    ts: Timestamp = Field(description="Device timestamp, ISO-8601 with offset (UTC).")
    seq: Seq
    net_kg: NetKg = Field(None, description="Net mass in kg.")
    gross_kg: Kg = Field(None, description="Gross mass in kg.")
    tare_kg: Kg = Field(None, description="Tare mass in kg.")
    material: Material  # the plain value once validated (use_enum_values)
    stream: Stream
    vehicle_plate: Plate | None = None
    origin_site_id: Id | None = Field(None, description="Site the load came from, if known.")
    price_per_kg: Price = Field(None, description="Rupiah per kg.")
    manual: Flag = Field(False, description="Hand-typed ticket (the scale failed).")

    @model_validator(mode="after")
    def _mass(self) -> WeighingPayload:
        if self.net_kg is None:
            if self.gross_kg is None or self.tare_kg is None:
                raise ValueError("give net_kg, or gross_kg and tare_kg")
            net = self.gross_kg - self.tare_kg
            if net < 0:
                raise ValueError(
                    f"negative mass: tare_kg {self.tare_kg} exceeds gross_kg {self.gross_kg}"
                )
            if net > MAX_WEIGHING_KG:
                raise ValueError(
                    f"impossible mass: net {net} kg exceeds {MAX_WEIGHING_KG} kg in one weighing"
                )
            self.net_kg = net
        elif (
            self.gross_kg is not None
            and self.tare_kg is not None
            and abs(self.gross_kg - self.tare_kg - self.net_kg) > NET_TOLERANCE_KG
        ):
            raise ValueError(
                f"net_kg {self.net_kg} disagrees with gross_kg - tare_kg = {self.gross_kg - self.tare_kg}"
            )
        return self


class BinPayload(BaseModel):
    """One bin sensor reading (topic kind `bin`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, title="Bin reading")

    ts: Timestamp = Field(description="Device timestamp, ISO-8601 with offset (UTC).")
    seq: Seq
    fill_pct: Percent = Field(None, description="Fill level, percent.")
    fill_ratio: Ratio = Field(None, description="Fill level, 0..1.")
    battery_pct: Percent = None
    temperature_c: Celsius = None
    tilt: Flag = False
    fire: Flag = False
    lid_open: Flag = False

    @model_validator(mode="after")
    def _fill(self) -> BinPayload:
        if (self.fill_pct is None) == (self.fill_ratio is None):
            raise ValueError("give exactly one of fill_pct (0-100) or fill_ratio (0-1)")
        return self

    @property
    def ratio(self) -> Decimal:
        """Fill level as a 0..1 ratio (how it is stored)."""
        if self.fill_ratio is not None:
            return self.fill_ratio
        assert self.fill_pct is not None
        return self.fill_pct / 100


class StatusPayload(BaseModel):
    """A device's connection status (topic kind `status`; plain `online`/`offline` is also accepted)."""

    model_config = ConfigDict(extra="forbid", title="Status")

    status: Literal["online", "offline"]
    ts: Timestamp | None = None


class WeighingRow(NamedTuple):
    """A weighing ready for the `weighing` table (column order of the COPY)."""

    ts: datetime
    city_id: str
    site_id: str
    device_id: str
    seq: int
    net_kg: Decimal
    gross_kg: Decimal | None
    tare_kg: Decimal | None
    material: str
    stream: str
    vehicle_plate: str | None
    origin_site_id: str | None
    from_own_site: bool
    price_per_kg: Decimal | None
    manual: bool


class BinRow(NamedTuple):
    """A bin reading ready for the `bin_reading` table (column order of the COPY)."""

    ts: datetime
    city_id: str
    site_id: str
    device_id: str
    seq: int
    fill_ratio: Decimal
    battery_pct: Decimal | None
    temperature_c: Decimal | None
    tilt: bool
    fire: bool
    lid_open: bool


class StatusRow(NamedTuple):
    """A device announcing it is online or offline."""

    device_id: str
    city_id: str
    connection: str


class Rejection(NamedTuple):
    """A payload (or one reading of a batch) that goes to quarantine, with why."""

    reason: str
    payload: bytes
    city_id: str | None
    site_id: str | None
    device_id: str | None
    kind: str | None


class Validated(NamedTuple):
    """What one MQTT message turned into."""

    weighings: list[WeighingRow]
    bins: list[BinRow]
    statuses: list[StatusRow]
    rejections: list[Rejection]

    @property
    def reading_count(self) -> int:
        """Readings in the message, good or bad (status messages are not readings)."""
        count = len(self.weighings) + len(self.bins)
        if self.rejections:
            count += sum(1 for r in self.rejections if r.kind != "status")
        return count


@functools.cache
def _batch_adapter(kind: ReadingKind, max_readings: int) -> TypeAdapter[Any]:
    """A batch parser that stops validating past `max_readings`: 87,000 `{}` in 256 KiB would
    otherwise cost a second of error building, per message."""
    limit = Field(max_length=max_readings)
    if kind is ReadingKind.WEIGHING:
        return TypeAdapter(Annotated[list[WeighingPayload], limit])
    return TypeAdapter(Annotated[list[BinPayload], limit])


def describe_errors(exc: ValidationError) -> str:
    """One readable sentence per problem: 'material: unknown value 'x' (expected food, ...)'."""
    parts: list[str] = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_DESCRIBED_ERRORS]:
        field = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "payload"
        kind = err["type"]
        got = err.get("input")
        ctx = err.get("ctx") or {}
        if kind == "missing":
            parts.append(f"{field} is missing")
        elif kind == "extra_forbidden":
            parts.append(f"unexpected field {quoted(field)}")
        elif kind == "enum":
            parts.append(f"unknown {field} {quoted(got)} (expected {ctx.get('expected', '')})")
        elif kind in ("greater_than_equal", "less_than_equal"):
            limit = ctx.get("ge", ctx.get("le"))
            word = "at least" if kind == "greater_than_equal" else "at most"
            what = (
                "negative mass: " if field.endswith("_kg") and kind == "greater_than_equal" else ""
            )
            if field == "net_kg" and kind == "less_than_equal":
                what = "impossible mass: "
            parts.append(
                f"{what}{field} must be {word} {limit} (got {bounded(str(got), MAX_QUOTED_CHARS)})"
            )
        elif kind == "timezone_aware":
            parts.append(
                f"{field} must carry a UTC offset, e.g. 2025-01-31T08:00:00Z (got {quoted(got)})"
            )
        elif kind in ("json_number", "iso_timestamp"):
            parts.append(f"{field} {err['msg']} (got {quoted(got)})")
        elif kind == "string_pattern_mismatch":
            meaning = PATTERN_MEANING.get(str(ctx.get("pattern")), "has an invalid format")
            parts.append(f"{field} {meaning} (got {quoted(got)})")
        elif kind == "value_error":
            parts.append(str(ctx.get("error", err["msg"])))
        elif kind == "json_invalid":
            parts.append(f"not valid JSON: {ctx.get('error', err['msg'])}")
        else:
            shown = (
                f" (got {quoted(got)})"
                if isinstance(got, str | int | float | bool) or got is None
                else ""
            )
            parts.append(f"{field}: {err['msg']}{shown}")
    if len(errors) > MAX_DESCRIBED_ERRORS:
        parts.append(f"and {len(errors) - MAX_DESCRIBED_ERRORS} more problems")
    return "; ".join(parts)


def _device_problem(topic: DeviceTopic, device: KnownDevice | None) -> str | None:
    if device is None:
        return f"unknown device {topic.device_id!r}"
    if device.site_id != topic.site_id:
        return (
            f"device {device.device_id!r} belongs to site {device.site_id!r}, not {topic.site_id!r}"
        )
    if not device.active:
        return f"device {device.device_id!r} is deactivated"
    allowed = KINDS_BY_DEVICE.get(device.kind, frozenset())
    if topic.kind not in allowed:
        return f"a {device.kind} does not send {topic.kind.value} messages"
    return None


def _time_problem(ts: datetime, now: datetime, max_future: timedelta) -> str:
    """Why a timestamp outside [EARLIEST_TS, now + max_future] is refused."""
    if ts > now + max_future:
        return f"timestamp {ts.isoformat()} is more than {int(max_future.total_seconds())} s in the future"
    return f"timestamp {ts.isoformat()} is before 2000: the device clock is not set"


@functools.lru_cache(maxsize=16)
def _max_future(seconds: int) -> timedelta:
    """The future bound as a timedelta (built once per setting, not per message)."""
    return timedelta(seconds=seconds)


def _render(item: Any) -> bytes:
    return json.dumps(item, separators=(",", ":"), default=str).encode()


def _too_many(count: object, max_readings: int) -> str:
    return f"{count} readings in one message: the limit is {max_readings} per message"


def validate_message(
    topic: str,
    payload: bytes,
    registry: RegistrySnapshot,
    now: datetime,
    *,
    max_future_s: int = 300,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    max_readings: int = MAX_READINGS,
) -> Validated:
    """Turn one MQTT message into rows and rejections; never raises on bad input.

    Whatever one payload makes the parsers raise (a bug, or a shape nobody foresaw) quarantines
    that message with the error as its reason: a message that crashed ingest would never be
    acknowledged, so the broker would deliver it again after every restart.
    """
    try:
        return _validate(
            topic, payload, registry, now, max_future_s, max_message_bytes, max_readings
        )
    except Exception as exc:
        reason = f"could not validate the message: {type(exc).__name__}: {bounded(str(exc), 200)}"
        return Validated([], [], [], [Rejection(reason, payload, *_origin(topic, registry))])


def _origin(
    topic: str, registry: RegistrySnapshot
) -> tuple[str | None, str | None, str | None, str | None]:
    """City, site, device and kind a topic names, as far as it names them (never raises)."""
    try:
        where = parse_topic(topic)
    except Exception:
        return None, None, None, None
    try:
        device = registry.devices.get(where.device_id)
        city_id = device.city_id if device else registry.site_city.get(where.site_id)
    except Exception:
        city_id = None
    return city_id, where.site_id, where.device_id, where.kind.value


def _validate(
    topic: str,
    payload: bytes,
    registry: RegistrySnapshot,
    now: datetime,
    max_future_s: int,
    max_message_bytes: int,
    max_readings: int,
) -> Validated:
    out = Validated([], [], [], [])
    try:
        where = parse_topic(topic)
    except TopicError as exc:
        out.rejections.append(Rejection(str(exc), payload, None, None, None, None))
        return out
    device = registry.devices.get(where.device_id)
    city_id = device.city_id if device else registry.site_city.get(where.site_id)

    def reject(reason: str, raw: bytes = payload) -> None:
        out.rejections.append(
            Rejection(reason, raw, city_id, where.site_id, where.device_id, where.kind.value)
        )

    if len(payload) > max_message_bytes:
        reject(
            f"message of {len(payload)} bytes: the limit is {max_message_bytes} bytes per message"
        )
        return out
    problem = _device_problem(where, device)
    if problem:
        reject(problem)
        return out
    assert device is not None
    if where.kind is ReadingKind.STATUS:
        _status(payload, device, out, reject)
        return out

    max_future = _max_future(max_future_s)
    weighing = where.kind is ReadingKind.WEIGHING
    model: type[WeighingPayload] | type[BinPayload] = WeighingPayload if weighing else BinPayload
    items: list[Any]
    # Fast path: pydantic parses the bytes directly; only a bad message pays for item-by-item work.
    try:
        batch = payload.lstrip()[:1] == b"["
        if batch:
            items = _batch_adapter(where.kind, max_readings).validate_json(payload)
        else:
            items = [model.model_validate_json(payload)]
        # A single reading keeps its exact bytes; a batch's readings are rendered one by one if needed.
        raws: list[bytes] | None = None if batch else [payload]
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            # Not JSON at all (or too deep, or a number too long for any parser): say so once,
            # without handing the bytes to a second parser.
            reject(describe_errors(exc))
            return out
        if first["type"] == "too_long" and not first["loc"]:
            reject(_too_many((first.get("ctx") or {}).get("actual_length", "more"), max_readings))
            return out
        items, raws = _item_by_item(payload, model, reject, max_readings)
    else:
        if not items:
            reject("empty array: a batch must hold at least one reading")
            return out
    latest = now + max_future
    city_id, site_id, device_id = device.city_id, device.site_id, device.device_id
    weighings, bins = out.weighings, out.bins
    for index, item in enumerate(items):
        try:
            # The same instant in the standard library's UTC: comparing (and later storing and
            # acknowledging) it skips pydantic's tzinfo, which costs ~0.5 µs per comparison.
            ts = item.ts.astimezone(UTC)
        except OverflowError:  # near year 1 or 9999: refused just below, with its own words
            ts = item.ts
        # The common case costs two comparisons; only a bad timestamp builds a reason.
        if not EARLIEST_TS <= ts <= latest:
            reject(
                _time_problem(item.ts, now, max_future),  # in the device's own offset
                raws[index]
                if raws is not None
                else _render(item.model_dump(mode="json", exclude_none=True)),
            )
            continue
        if weighing:
            origin = item.origin_site_id
            weighings.append(
                WeighingRow(
                    ts,
                    city_id,
                    site_id,
                    device_id,
                    item.seq,
                    item.net_kg,
                    item.gross_kg,
                    item.tare_kg,
                    item.material,
                    item.stream,
                    item.vehicle_plate,
                    origin,
                    origin is not None and registry.site_city.get(origin) == city_id,
                    item.price_per_kg,
                    item.manual,
                )
            )
        else:
            bins.append(
                BinRow(
                    ts,
                    city_id,
                    site_id,
                    device_id,
                    item.seq,
                    item.ratio,
                    item.battery_pct,
                    item.temperature_c,
                    item.tilt,
                    item.fire,
                    item.lid_open,
                )
            )
    return out


def _item_by_item(
    payload: bytes,
    model: type[WeighingPayload] | type[BinPayload],
    reject: Any,
    max_readings: int,
) -> tuple[list[Any], list[bytes]]:
    """Slow path for a message with a problem: keep the good readings, reject each bad one."""
    try:
        decoded = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        reject(f"not valid JSON: {bounded(str(exc), 200)}")
        return [], []
    if isinstance(decoded, list):
        if not decoded:
            reject("empty array: a batch must hold at least one reading")
            return [], []
        if len(decoded) > max_readings:
            reject(_too_many(len(decoded), max_readings))
            return [], []
        batch = True
        elements = decoded
    else:
        batch = False
        elements = [decoded]
    good: list[Any] = []
    raws: list[bytes] = []
    for index, element in enumerate(elements):
        raw = _render(element) if batch else payload
        prefix = f"reading {index + 1} of {len(elements)}: " if batch else ""
        if not isinstance(element, dict):
            reject(f"{prefix}a reading must be a JSON object, got {type(element).__name__}", raw)
            continue
        try:
            good.append(model.model_validate(element))
            raws.append(raw)
        except ValidationError as exc:
            reject(prefix + describe_errors(exc), raw)
    return good, raws


def _status(payload: bytes, device: KnownDevice, out: Validated, reject: Any) -> None:
    text = payload.strip()
    if not text:
        return  # an empty retained message only clears the broker's copy
    if text in (b"online", b"offline"):
        out.statuses.append(StatusRow(device.device_id, device.city_id, text.decode()))
        return
    try:
        status = StatusPayload.model_validate_json(text)
    except ValidationError as exc:
        reject(f"status must be 'online', 'offline' or {{\"status\": ...}}: {describe_errors(exc)}")
        return
    out.statuses.append(StatusRow(device.device_id, device.city_id, status.status))


def now_utc() -> datetime:
    """The current time, timezone-aware (validation takes `now` as an argument to stay pure)."""
    return datetime.now(UTC)
