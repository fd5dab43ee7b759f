"""MQTT topic names of the v1 protocol: pisman/v1/<site_id>/<device_id>/<kind>."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.reasons import quoted
from pisman.devices import ACK_KIND, device_topic
from pisman.domain import ID_PATTERN, TOPIC_ROOT, ReadingKind

TOPIC_PREFIX = f"{TOPIC_ROOT}/"
# Everything under the prefix, whatever its depth: the generated ACL lets devices and gateways
# publish only weighing, bin and status topics, but an account with wider rights (a hand-written
# ACL, an anonymous broker) can still send a topic of the wrong depth, which must reach quarantine with a reason rather than be acknowledged
# by the broker and never seen. Ingest's own acks match too: is_ack_topic() skips them.
SUBSCRIPTION = f"{TOPIC_ROOT}/#"
TOPIC_SHAPE = f"{TOPIC_ROOT}/<site_id>/<device_id>/<kind>"
_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))
_KINDS = {k.value: k for k in ReadingKind}


class TopicError(ValueError):
    """A topic that is not a v1 device topic; str() is the human-readable reason."""


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """The parts of a device topic."""

    site_id: str
    device_id: str
    kind: ReadingKind


# Devices publish to a handful of topics each: remember the parsed ones (short ones only, and a
# bounded number, so that a flood of made-up topics costs memory only up to this).
_PARSED: dict[str, DeviceTopic] = {}
PARSED_MAX_TOPICS = 20_000
PARSED_MAX_CHARS = 256


def parse_topic(topic: str) -> DeviceTopic:
    """Split a v1 topic into site, device and kind; raise TopicError saying what is wrong."""
    parsed = _PARSED.get(topic)
    if parsed is None:
        parsed = _parse_topic(topic)
        if len(topic) <= PARSED_MAX_CHARS:
            if len(_PARSED) >= PARSED_MAX_TOPICS:
                _PARSED.clear()
            _PARSED[topic] = parsed
    return parsed


def _parse_topic(topic: str) -> DeviceTopic:
    """parse_topic's work, uncached."""
    if not topic.startswith(TOPIC_PREFIX):
        raise TopicError(f"topic does not start with {TOPIC_PREFIX!r}")
    parts = topic[len(TOPIC_PREFIX) :].split("/")
    if len(parts) != 3:
        raise TopicError(
            f"topic must be {TOPIC_SHAPE}: it has {len(parts)} levels after {TOPIC_PREFIX!r}, not 3"
        )
    site_id, device_id, kind = parts
    if not _ID.fullmatch(site_id):
        raise TopicError(f"site id {quoted(site_id)} is not a valid id")
    if not _ID.fullmatch(device_id):
        raise TopicError(f"device id {quoted(device_id)} is not a valid id")
    reading_kind = _KINDS.get(kind)
    if reading_kind is None:
        raise TopicError(f"unknown message kind {quoted(kind)} (use weighing, bin or status)")
    return DeviceTopic(site_id, device_id, reading_kind)


def subscription(share_group: str | None) -> str:
    """The topic filter ingest subscribes to, shared when a group is given."""
    return f"$share/{share_group}/{SUBSCRIPTION}" if share_group else SUBSCRIPTION


def ack_topic(site_id: str, device_id: str) -> str:
    """Where ingest tells a device which of its readings are committed (docs/protocol.md)."""
    return device_topic(site_id, device_id, ACK_KIND)


def is_ack_topic(topic: str) -> bool:
    """An ack ingest (or another ingest worker) published: not device data, never quarantined."""
    return (
        topic.startswith(TOPIC_PREFIX)
        and topic.endswith("/" + ACK_KIND)
        and topic.count("/") == TOPIC_PREFIX.count("/") + 2
    )
