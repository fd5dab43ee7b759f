import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion


def test_db_and_broker_fixtures_work(db_url, broker):
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migration").fetchone()[0] >= 4
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker.port)
    c.disconnect()
