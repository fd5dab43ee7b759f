"""Validation of device payloads: pure functions, no broker or database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.reasons import MAX_QUOTED_CHARS
from ingest.registry import KnownDevice, RegistrySnapshot
from ingest.topics import TopicError, parse_topic
from ingest.validate import MAX_READINGS, validate_message
from pisman.domain import Material, Stream

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SNAPSHOT = RegistrySnapshot(
    devices={
        "scale-1": KnownDevice("scale-1", "bandung", "bank-1", "platform_scale", True),
        "bin-1": KnownDevice("bin-1", "bandung", "depot-1", "bin_sensor", True),
        "old-1": KnownDevice("old-1", "bandung", "depot-1", "platform_scale", False),
    },
    site_city={"bank-1": "bandung", "depot-1": "bandung", "hub-1": "bandung", "far-1": "cimahi"},
)
W_TOPIC = "pisman/v1/bank-1/scale-1/weighing"
B_TOPIC = "pisman/v1/depot-1/bin-1/bin"


def w(seq: int = 1, **fields: Any) -> dict[str, Any]:
    base = {
        "ts": "2025-06-01T11:59:00Z",
        "seq": seq,
        "net_kg": 12.5,
        "material": "plastic",
        "stream": "deposit",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def check(topic: str, payload: Any, now: datetime = NOW):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return validate_message(topic, raw, SNAPSHOT, now, max_future_s=300)


def only_reason(result) -> str:
    assert len(result.rejections) == 1, result
    return result.rejections[0].reason


def test_valid_weighing_becomes_a_row_with_exact_decimal_mass() -> None:
    result = check(W_TOPIC, w(net_kg=12.345, vehicle_plate=" D 1234 AB ", price_per_kg=3500))
    assert not result.rejections
    (row,) = result.weighings
    assert row.net_kg == Decimal("12.345")
    assert (row.city_id, row.site_id, row.device_id, row.seq) == ("bandung", "bank-1", "scale-1", 1)
    assert row.vehicle_plate == "D 1234 AB"
    assert row.price_per_kg == Decimal("3500")


def test_gross_and_tare_give_the_net_mass() -> None:
    (row,) = check(W_TOPIC, w(net_kg=None, gross_kg=9000, tare_kg=6500)).weighings
    assert row.net_kg == Decimal("2500")
    assert (row.gross_kg, row.tare_kg) == (Decimal("9000"), Decimal("6500"))


def test_origin_site_of_the_same_city_marks_an_internal_transfer() -> None:
    assert check(W_TOPIC, w(origin_site_id="hub-1")).weighings[0].from_own_site is True
    assert check(W_TOPIC, w(origin_site_id="far-1")).weighings[0].from_own_site is False
    assert check(W_TOPIC, w(origin_site_id="kampung-x")).weighings[0].from_own_site is False
    assert check(W_TOPIC, w()).weighings[0].from_own_site is False


def test_bin_fill_percent_is_stored_as_a_ratio_and_ratio_is_accepted() -> None:
    b = {
        "ts": "2025-06-01T11:00:00+07:00",
        "seq": 3,
        "fill_pct": 85,
        "battery_pct": 71.5,
        "fire": True,
    }
    (row,) = check(B_TOPIC, b).bins
    assert row.fill_ratio == Decimal("0.85")
    assert row.fire is True and row.battery_pct == Decimal("71.5")
    assert row.ts == datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
    (row,) = check(B_TOPIC, {"ts": "2025-06-01T11:00:00Z", "seq": 4, "fill_ratio": 0.3}).bins
    assert row.fill_ratio == Decimal("0.3")


def test_each_kind_of_bad_input_is_quarantined_with_a_readable_reason() -> None:
    cases = {
        b"not json at all": "not valid JSON",
        json.dumps(w(material="kaca")).encode(): "unknown material 'kaca'",
        json.dumps(w(stream="dumped")).encode(): "unknown stream 'dumped'",
        json.dumps(w(net_kg=-3)).encode(): "negative mass",
        json.dumps(w(net_kg=60_001)).encode(): "impossible mass",
        json.dumps(w(net_kg=None, gross_kg=5, tare_kg=9)).encode(): "negative mass",
        json.dumps(w(net_kg=None)).encode(): "give net_kg, or gross_kg and tare_kg",
        json.dumps(w(ts="2025-06-01T12:06:00Z")).encode(): "in the future",
        json.dumps(w(ts="2025-06-01T11:00:00")).encode(): "must carry a UTC offset",
        json.dumps(w(seq="7")).encode(): "seq",
        json.dumps(w(seq=-1)).encode(): "seq must be at least 0",
        json.dumps(w(colour="red")).encode(): "unexpected field 'colour'",
        json.dumps(w(manual="yes")).encode(): "manual",
        b'{"ts": "2025-06-01T11:59:00Z", "seq": 1, "net_kg": NaN, "material": "food", "stream": "mixed"}': "net_kg",
    }
    for payload, expected in cases.items():
        result = check(W_TOPIC, payload)
        assert not result.weighings, payload
        assert expected in only_reason(result), (payload, only_reason(result))
        assert result.rejections[0].payload == payload
    assert "fill_pct must be at most 100" in only_reason(
        check(B_TOPIC, {"ts": "2025-06-01T11:00:00Z", "seq": 1, "fill_pct": 101})
    )
    assert "exactly one of" in only_reason(check(B_TOPIC, {"ts": "2025-06-01T11:00:00Z", "seq": 1}))


def test_one_bad_reading_in_a_batch_does_not_drop_the_good_ones() -> None:
    batch = [w(1), w(2, material="unobtainium"), w(3), "garbage", w(4, net_kg=70_000)]
    result = check(W_TOPIC, batch)
    assert [r.seq for r in result.weighings] == [1, 3]
    reasons = [r.reason for r in result.rejections]
    assert reasons[0].startswith("reading 2 of 5: unknown material")
    assert reasons[1].startswith("reading 4 of 5: a reading must be a JSON object")
    assert reasons[2].startswith("reading 5 of 5: impossible mass")
    # The quarantined bytes are the bad reading alone, so it can be fixed and retried by itself.
    assert json.loads(result.rejections[0].payload)["material"] == "unobtainium"


def test_unknown_device_wrong_site_deactivated_and_wrong_kind_are_quarantined() -> None:
    assert "unknown device 'ghost'" in only_reason(check("pisman/v1/bank-1/ghost/weighing", w()))
    assert "belongs to site 'bank-1', not 'depot-1'" in only_reason(
        check("pisman/v1/depot-1/scale-1/weighing", w())
    )
    assert "deactivated" in only_reason(check("pisman/v1/depot-1/old-1/weighing", w()))
    assert "does not send bin messages" in only_reason(check("pisman/v1/bank-1/scale-1/bin", w()))
    assert "unknown message kind" in only_reason(check("pisman/v1/bank-1/scale-1/gps", w()))
    rejection = check("pisman/v1/depot-1/scale-1/weighing", w()).rejections[0]
    assert (rejection.site_id, rejection.device_id, rejection.city_id) == (
        "depot-1",
        "scale-1",
        "bandung",
    )


def test_status_accepts_plain_text_and_json_and_ignores_an_empty_retained_clear() -> None:
    topic = "pisman/v1/depot-1/bin-1/status"
    assert check(topic, b"online").statuses[0].connection == "online"
    assert check(topic, b'{"status": "offline"}').statuses[0].connection == "offline"
    empty = check(topic, b"")
    assert not empty.statuses and not empty.rejections
    assert "status must be" in only_reason(check(topic, b"sleeping"))


def test_topic_parsing_names_the_problem() -> None:
    assert parse_topic("pisman/v1/depot-1/bin-1/bin").device_id == "bin-1"
    for bad, reason in [
        ("other/v1/a/b/bin", "does not start"),
        ("pisman/v1/a/b", "must be"),
        ("pisman/v1/A/b/bin", "site id"),
        ("pisman/v1/a/b/c/bin", "must be"),
        ("pisman/v1/a/b/bin/", "4 levels"),
        ("pisman/v1/a\n/b/bin", "site id"),
    ]:
        try:
            parse_topic(bad)
        except TopicError as exc:
            assert reason in str(exc)
        else:
            raise AssertionError(bad)


weighings = st.fixed_dictionaries(
    {
        "ts": st.datetimes(
            min_value=datetime(2001, 1, 1),
            max_value=datetime(2025, 6, 1, 12, 4),
            timezones=st.just(UTC),
        ).map(lambda d: d.isoformat()),
        "seq": st.integers(min_value=0, max_value=2**63 - 1),
        "net_kg": st.decimals(min_value=0, max_value=60_000, places=3, allow_nan=False)
        .map(str)
        .map(float),
        "material": st.sampled_from([m.value for m in Material]),
        "stream": st.sampled_from([s.value for s in Stream]),
    },
    optional={
        "manual": st.booleans(),
        "vehicle_plate": st.from_regex(r"[A-Z]{1,2} [0-9]{1,4} [A-Z]{0,3}", fullmatch=True),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(weighings, min_size=1, max_size=20))
def test_any_valid_batch_is_accepted_whole_and_in_order(batch: list[dict[str, Any]]) -> None:
    result = check(W_TOPIC, batch)
    assert not result.rejections
    assert [r.seq for r in result.weighings] == [item["seq"] for item in batch]
    assert all(0 <= r.net_kg <= 60_000 for r in result.weighings)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            weighings,
            st.integers(),
            st.text(max_size=5),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        ),
        min_size=1,
        max_size=15,
    )
)
def test_every_reading_of_a_mixed_batch_is_either_stored_or_quarantined(batch: list[Any]) -> None:
    result = check(W_TOPIC, batch)
    assert len(result.weighings) + len(result.rejections) == len(batch)
    assert len(result.weighings) == sum(
        1 for item in batch if isinstance(item, dict) and "material" in item
    )


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200),
    st.sampled_from([W_TOPIC, B_TOPIC, "pisman/v1/depot-1/bin-1/status", "x/y"]),
)
def test_arbitrary_bytes_never_raise_and_are_quarantined_unless_valid(
    payload: bytes, topic: str
) -> None:
    result = check(topic, payload)
    stored = len(result.weighings) + len(result.bins) + len(result.statuses)
    assert stored or result.rejections or (topic.endswith("/status") and not payload.strip())
    for rejection in result.rejections:
        assert rejection.reason


# JSON of any shape and depth, with the numbers devices get wrong.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±Infinity included
    | st.text(max_size=8)
    | st.sampled_from(["12.5", "1748779140", "2025-06-01T11:59:00Z", "a\x00b"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
reading_like = st.fixed_dictionaries(
    {},
    optional={
        "ts": json_values,
        "seq": json_values,
        "net_kg": json_values,
        "material": st.sampled_from(["plastic", "kaca"]) | json_values,
        "stream": st.sampled_from(["deposit"]) | json_values,
        "vehicle_plate": json_values,
        "fill_pct": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(json_values, reading_like, st.lists(reading_like | json_values, max_size=5)),
    st.sampled_from([W_TOPIC, B_TOPIC]),
)
def test_json_of_any_shape_never_raises_and_every_reading_is_stored_or_quarantined(
    value: Any, topic: str
) -> None:
    result = check(topic, json.dumps(value).encode())
    readings = len(value) if isinstance(value, list) and value else 1
    assert len(result.weighings) + len(result.bins) + len(result.rejections) == readings
    for row in result.weighings:  # what is stored came as JSON numbers and ISO text
        assert row.vehicle_plate is None or row.vehicle_plate.isprintable()


def test_poison_integer_of_more_than_4300_digits_is_quarantined_and_does_not_raise() -> None:
    """Regression: Python refuses int('1' * 4301); json.loads raised ValueError and ingest died."""
    poison = "1" * 5000
    for raw in (
        f'{{"ts": "2025-06-01T11:59:00Z", "seq": {poison}, "net_kg": 1, "material": "food", "stream": "mixed"}}',
        f"[{json.dumps(w(1))}, {poison}]",
        f'{{"status": "online", "ts": {poison}}}',
        f"{poison}",
    ):
        for topic in (W_TOPIC, "pisman/v1/bank-1/scale-1/status"):
            result = check(topic, raw.encode())
            assert not result.weighings and not result.statuses
            assert result.rejections, raw[:40]
    assert "not valid JSON: number out of range" in only_reason(check(W_TOPIC, poison.encode()))


def test_an_empty_array_is_quarantined_with_a_reason() -> None:
    for raw in (b"[]", b" [ ] "):
        assert "empty array" in only_reason(check(W_TOPIC, raw))
        assert "empty array" in only_reason(check(B_TOPIC, raw))


def test_numbers_as_strings_and_epoch_timestamps_are_refused() -> None:
    cases = {
        "seq": (w(seq="7"), "seq"),
        "net_kg": (w(net_kg="12.5"), "net_kg must be a JSON number, not a string"),
        "gross": (
            w(net_kg=None, gross_kg="9000", tare_kg=6500),
            "gross_kg must be a JSON number",
        ),
        "price": (w(price_per_kg="3500"), "price_per_kg must be a JSON number"),
        "epoch string": (w(ts="1748779140"), "ts must be an ISO-8601 string with a UTC offset"),
        "epoch number": (w(ts=1748779140), "ts must be an ISO-8601 string"),
        "epoch ms": (w(ts=1748779140000), "ts must be an ISO-8601 string"),
        "no offset": (w(ts="2025-06-01T11:00:00"), "must carry a UTC offset"),
    }
    for name, (payload, expected) in cases.items():
        for raw in (payload, [payload], [w(99), payload]):  # fast path and item-by-item path
            result = check(W_TOPIC, raw)
            assert len(result.rejections) == 1, (name, result)
            assert expected in result.rejections[0].reason, (name, result.rejections[0].reason)
    bin_cases = [
        {"ts": "2025-06-01T11:00:00Z", "seq": 1, "fill_pct": "50"},
        {"ts": "2025-06-01T11:00:00Z", "seq": 1, "fill_ratio": 0.5, "battery_pct": "80"},
        {"ts": "1748779140", "seq": 1, "fill_pct": 50},
    ]
    for payload in bin_cases:
        assert "must be" in only_reason(check(B_TOPIC, payload))
    assert "ts must be" in only_reason(
        check("pisman/v1/depot-1/bin-1/status", {"status": "online", "ts": 1748779140})
    )
    # JSON numbers of any form are still numbers.
    (row,) = check(
        W_TOPIC,
        b'{"ts":"2025-06-01T11:59:00+07:00","seq":1,"net_kg":1.25e2,'
        b'"material":"food","stream":"mixed"}',
    ).weighings
    assert row.net_kg == Decimal("125")


def test_nul_and_control_characters_in_a_plate_are_quarantined_by_validation() -> None:
    for plate in ("D 12\x00 AB", "\x00", "D\x1b[2J", "D\x7f1", "D\u00851"):
        reason = only_reason(check(W_TOPIC, w(vehicle_plate=plate)))
        assert "vehicle_plate must not contain control characters" in reason
        assert "\x00" not in reason  # the reason itself is storable text
    batch = [w(i) for i in range(50)] + [w(50, vehicle_plate="B\x00")]
    result = check(W_TOPIC, batch)
    assert len(result.weighings) == 50 and len(result.rejections) == 1
    assert check(W_TOPIC, w(vehicle_plate="D 1234 ÄB")).weighings  # non-ASCII letters are fine


def test_deep_nesting_non_finite_numbers_and_invalid_utf8_are_quarantined() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert "not valid JSON" in only_reason(check(W_TOPIC, deep))
    deep_object = b'{"ts": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001
    assert "not valid JSON" in only_reason(check(W_TOPIC, deep_object))
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        raw = b'{"ts": "2025-06-01T11:59:00Z", "seq": 1, "net_kg": ' + literal
        raw += b', "material": "food", "stream": "mixed"}'
        assert "net_kg" in only_reason(check(W_TOPIC, raw)), literal
        assert only_reason(check(W_TOPIC, b"[" + raw + b"]"))
    for raw in (b"\xff\xfe", b'{"material": "pl\xe4stic"}', b'"\xed\xa0\x80"'):
        assert "not valid JSON" in only_reason(check(W_TOPIC, raw))
    lone_surrogate = json.dumps(w(vehicle_plate="\ud800")).encode()
    assert "not valid JSON" in only_reason(check(W_TOPIC, lone_surrogate))
    assert only_reason(check(W_TOPIC, json.dumps([w(1, vehicle_plate="\udfff")]).encode()))


def test_wrong_topic_depth_is_quarantined_with_the_reason() -> None:
    for topic in (
        "pisman/v1/bank-1/scale-1",
        "pisman/v1/bank-1/scale-1/weighing/x",
        "pisman/v1/bank-1",
        "pisman/v1/",
    ):
        reason = only_reason(check(topic, w()))
        assert "topic must be pisman/v1/<site_id>/<device_id>/<kind>" in reason, topic


def test_a_message_over_the_byte_or_readings_limit_is_one_rejection() -> None:
    big = json.dumps([w(i) for i in range(3000)]).encode()
    result = validate_message(W_TOPIC, big, SNAPSHOT, NOW, max_message_bytes=len(big) - 1)
    assert only_reason(result) == (
        f"message of {len(big)} bytes: the limit is {len(big) - 1} bytes per message"
    )
    assert result.rejections[0].payload == big and result.rejections[0].device_id == "scale-1"
    result = validate_message(W_TOPIC, big, SNAPSHOT, NOW, max_message_bytes=len(big))
    assert only_reason(result) == "3000 readings in one message: the limit is 1000 per message"
    # Within the byte limit, a flood of tiny bad readings is refused before each is validated.
    empties = b"[" + b"{}," * 87_000 + b"{}]"
    assert len(empties) < 262_144
    for topic in (W_TOPIC, B_TOPIC):
        assert only_reason(check(topic, empties)) == (
            "87001 readings in one message: the limit is 1000 per message"
        )
    mixed = json.dumps([w(i) for i in range(MAX_READINGS)] + ["bad"]).encode()
    assert "1001 readings in one message" in only_reason(check(W_TOPIC, mixed))
    ok = json.dumps([w(i) for i in range(MAX_READINGS)]).encode()
    assert len(check(W_TOPIC, ok).weighings) == MAX_READINGS
    assert "limit is 7 per message" in only_reason(
        validate_message(
            W_TOPIC, json.dumps([w(i) for i in range(8)]).encode(), SNAPSHOT, NOW, max_readings=7
        )
    )


def test_reasons_quote_input_briefly() -> None:
    huge = "x" * 1_000_000
    for payload in (
        w(material=huge),
        w(stream=huge),
        w(vehicle_plate=huge),
        w(ts=huge),
        w(net_kg=huge),
        {**w(), huge: 1},
        w(seq=huge),
    ):
        raw = json.dumps(payload).encode()  # 1 MB: over the byte limit, unless raised
        result = validate_message(W_TOPIC, raw, SNAPSHOT, NOW, max_message_bytes=2_000_000)
        reason = only_reason(result)
        assert len(reason) < 400, reason[:100]
        assert "…" in reason
    many = only_reason(check(W_TOPIC, {**w(), **{f"k{i}": 1 for i in range(20_000)}}))
    assert many.endswith("; and 19990 more problems") and len(many) < 300
    topic_reason = only_reason(check(f"pisman/v1/{huge}/scale-1/weighing", w()))
    assert len(topic_reason) < 2 * MAX_QUOTED_CHARS + 40


class _BrokenDevices(dict):
    def get(self, *args: Any) -> Any:
        raise RuntimeError("registry lookup exploded")


def test_an_unexpected_error_while_validating_quarantines_the_message_instead_of_raising() -> None:
    broken = RegistrySnapshot(devices=_BrokenDevices(), site_city={"bank-1": "bandung"})
    result = validate_message(W_TOPIC, json.dumps(w()).encode(), broken, NOW)
    assert not result.weighings
    assert only_reason(result).startswith(
        "could not validate the message: RuntimeError: registry lookup exploded"
    )
    assert (result.rejections[0].site_id, result.rejections[0].kind) == ("bank-1", "weighing")


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-10_000, max_value=10_000))
def test_future_timestamps_are_quarantined_beyond_five_minutes(seconds_ahead: int) -> None:
    ts = (NOW + timedelta(seconds=seconds_ahead)).isoformat()
    result = check(W_TOPIC, w(ts=ts))
    assert bool(result.rejections) == (seconds_ahead > 300)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(None)
    ),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_a_timestamp_in_any_offset_is_judged_and_stored_as_the_same_instant(
    local: datetime, offset_min: int
) -> None:
    """Rows carry the device's instant (in UTC, whatever offset it wrote); the bounds are
    judged on that instant, and a refusal quotes the timestamp as the device wrote it."""
    ts = local.replace(tzinfo=timezone(timedelta(minutes=offset_min)))
    text = ts.isoformat()
    result = check(W_TOPIC, w(ts=text))
    in_range = datetime(2000, 1, 1, tzinfo=UTC) <= ts <= NOW + timedelta(seconds=300)
    if in_range:
        (row,) = result.weighings
        assert row.ts == ts and row.ts.utcoffset() == timedelta(0)
    else:
        assert not result.weighings
        reason = only_reason(result)
        assert reason.startswith(f"timestamp {text} is "), reason
        assert ("in the future" in reason) == (ts > NOW), reason


def test_timestamps_at_the_ends_of_the_calendar_are_refused_with_their_reason() -> None:
    """Near year 1 or 9999 an offset puts the instant outside what datetime can hold in UTC."""
    for text, words in (
        ("0001-01-01T00:30:00+01:00", "is before 2000: the device clock is not set"),
        ("9999-12-31T23:30:00-01:00", "is more than 300 s in the future"),
    ):
        assert only_reason(check(W_TOPIC, w(ts=text))) == f"timestamp {text} {words}"


def test_published_json_schemas_match_the_validation_models() -> None:
    from ingest.schemas import MODELS, SCHEMA_DIR, render

    for kind in MODELS:
        assert (SCHEMA_DIR / f"{kind}.json").read_text() == render(kind), (
            f"docs/schemas/{kind}.json is stale: run python -m ingest.schemas"
        )
