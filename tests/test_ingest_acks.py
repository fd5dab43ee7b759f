"""Ingest's acknowledgements reach the broker: committed messages are not delivered again."""

from __future__ import annotations

import time
import uuid

import psycopg

from tests.support.broker import Mosquitto
from tests.support.ingest_world import (
    dumps,
    publish_all,
    publisher,
    running_ingest,
    scalar,
    seed_city,
    settings_for,
    wait_for,
    weighing,
)

BANK = "pisman/v1/bank-1/scale-bank-1/weighing"
MESSAGES = 1500  # more than the receive maximum (1000 at batch size 100): acks must flow


def test_committed_messages_are_acknowledged_and_not_redelivered_after_a_restart(
    db_url: str, broker: Mosquitto
) -> None:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    settings = settings_for(db_url, broker.url)
    client_id = f"ingest-acks-{uuid.uuid4().hex[:6]}"
    with running_ingest(settings, client_id=client_id, batch_size=100) as first:
        pub = publisher(broker.port)
        publish_all(pub, [(BANK, dumps(weighing(i, net_kg=1))) for i in range(MESSAGES)])
        wait_for(
            lambda: scalar(db_url, "SELECT count(*) FROM weighing") == MESSAGES,
            timeout=30,
            what="every message stored",
        )
        pub.disconnect()
    received = first.metrics.registry.get_sample_value("pisman_ingest_messages_received_total")
    assert received == MESSAGES

    # Same client id, persistent session: anything left unacknowledged would come back now.
    with running_ingest(settings, client_id=client_id, batch_size=100) as second:
        time.sleep(1.5)
        again = second.metrics.registry.get_sample_value("pisman_ingest_messages_received_total")
    assert again == 0
    assert scalar(db_url, "SELECT sum(duplicates_total) FROM device_state") == 0


def test_the_private_paho_call_behind_combined_pubacks_is_still_there() -> None:
    """ingest/client.py queues a batch's PUBACKs as one write through paho's private
    Client._packet_queue (pyproject.toml bounds paho to the releases it was checked on). If a
    paho release renames or reshapes it, ingest silently falls back to one ack() per message
    (correct, but ~25 % slower on single readings): this test fails first."""
    import inspect

    import paho.mqtt.client as mqtt

    from ingest import client

    assert client._COALESCE_PUBACKS, "paho.mqtt.client.Client._packet_queue is gone"
    params = list(inspect.signature(mqtt.Client._packet_queue).parameters)
    assert params[:5] == ["self", "command", "packet", "mid", "qos"], params
    assert mqtt.PUBACK == 0x40
