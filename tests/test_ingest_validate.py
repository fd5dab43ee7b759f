"""Validation of device payloads: pure functions, no broker or database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.registry import KnownDevice, RegistrySnapshot
from ingest.topics import TopicError, parse_topic
from ingest.validate import validate_message
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
    assert (
        len(result.weighings) + len(result.bins) + len(result.statuses) + len(result.rejections)
        >= 0
    )
    for rejection in result.rejections:
        assert rejection.reason


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-10_000, max_value=10_000))
def test_future_timestamps_are_quarantined_beyond_five_minutes(seconds_ahead: int) -> None:
    ts = (NOW + timedelta(seconds=seconds_ahead)).isoformat()
    result = check(W_TOPIC, w(ts=ts))
    assert bool(result.rejections) == (seconds_ahead > 300)


def test_published_json_schemas_match_the_validation_models() -> None:
    from ingest.schemas import MODELS, SCHEMA_DIR, render

    for kind in MODELS:
        assert (SCHEMA_DIR / f"{kind}.json").read_text() == render(kind), (
            f"docs/schemas/{kind}.json is stale: run python -m ingest.schemas"
        )
