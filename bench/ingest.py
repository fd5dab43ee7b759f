"""Ingest benchmark: readings from M devices through a real broker into PostgreSQL and TimescaleDB, vs a naive baseline.

Run: .venv/bin/python -m bench.ingest [--backends postgresql,timescaledb] [--messages 100000]
     [--devices 50] [--commit-acks both] [--repeat 3] [--ingest-from before=/tmp/old-checkout]
Every scenario runs on every backend in the same run, interleaved (both share the machine's
noise), each against a fresh ingest process. Prints sustained stored readings/s, end-to-end
latency (device ts -> stored) p50/p99, the ingest process's peak memory and, with commit acks
on, the ack bytes per reading that reach a subscriber of every device's ack topic (as the
devices would receive them); then one markdown table with the backends side by side, the naive
one-INSERT-and-COMMIT-per-message baseline on each, the ratios, and the load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from pisman import db
from pisman.devices import hash_password
from pisman.settings import PROJECT_ROOT
from tests.support.broker import Mosquitto, free_port

WINDOW = 20_000  # unacknowledged QoS 1 messages per publisher (below the 65,535 packet ids)
MATERIALS = ("food", "plastic", "paper", "metal", "glass")
CLEAR = "TRUNCATE weighing, weighing_hourly, weighing_daily, device_state"
COUNT = "SELECT count(*) FROM weighing"
LATENCY = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts))
FROM weighing
"""
NAIVE_INSERT = """
INSERT INTO weighing (ts, city_id, site_id, device_id, seq, net_kg, material, stream)
VALUES (%s, 'benchcity', %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""


def seed(url: str, devices: int) -> list[tuple[str, str]]:
    """One city, one depot per 10 devices, M platform scales; returns (site, device) pairs."""
    pairs = [(f"depot-{i // 10}", f"scale-{i}") for i in range(devices)]
    pw = hash_password("bench")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO city (city_id, name) VALUES ('benchcity', 'Bench')")
        conn.execute(
            "INSERT INTO district (city_id, district_id, name) VALUES ('benchcity', 'd', 'D')"
        )
        for site in sorted({s for s, _ in pairs}):
            conn.execute(
                "INSERT INTO site (site_id, city_id, district_id, name, site_type)"
                " VALUES (%s, 'benchcity', 'd', %s, 'depot')",
                (site, site),
            )
        for site, device in pairs:
            conn.execute(
                "INSERT INTO device (device_id, city_id, site_id, kind, password_hash)"
                " VALUES (%s, 'benchcity', %s, 'platform_scale', %s)",
                (device, site, pw),
            )
    return pairs


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_connect(port: int, client_id: str) -> socket.socket:
    """A raw MQTT 3.1.1 connection (clean session, no keepalive), CONNACK checked."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(cid)) + cid
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    ack = b""
    while len(ack) < 4:
        chunk = sock.recv(4 - len(ack))
        if not chunk:
            raise SystemExit("broker closed the publisher connection")
        ack += chunk
    if ack[0] != 0x20 or ack[3] != 0:
        raise SystemExit(f"broker refused the publisher: {ack!r}")
    return sock


TS_PLACEHOLDER = "2000-01-01T00:00:00.000000+00:00"  # same width as every timestamp sent


def _packet_templates(
    pairs: list[tuple[str, str]], messages: int, per_message: int, seq_base: int
) -> list[list[bytes]]:
    """Each message as QoS 1 PUBLISH bytes split where its timestamps go (filled at send time)."""
    topics = [f"pisman/v1/{s}/{d}/weighing".encode() for s, d in pairs]
    seqs = [seq_base] * len(pairs)
    templates: list[list[bytes]] = []
    for i in range(messages):
        k = i % len(pairs)
        readings = []
        for _ in range(per_message):
            readings.append(
                {
                    "ts": TS_PLACEHOLDER,
                    "seq": seqs[k],
                    "net_kg": 1 + seqs[k] % 90,
                    "material": MATERIALS[seqs[k] % 5],
                    "stream": "mixed",
                }
            )
            seqs[k] += 1
        payload = json.dumps(readings[0] if per_message == 1 else readings).encode()
        mid = i % 65535 + 1
        variable = struct.pack("!H", len(topics[k])) + topics[k] + struct.pack("!H", mid)
        packet = b"\x32" + _varint(len(variable) + len(payload)) + variable + payload
        templates.append(packet.split(TS_PLACEHOLDER.encode()))
    return templates


def publish_worker(
    port: int,
    pairs: list[tuple[str, str]],
    messages: int,
    per_message: int,
    rate: float,
    seq_base: int,
    ready: mp.Queue,  # type: ignore[type-arg]
    go: mp.Event,  # type: ignore[type-arg]
    done: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """One publisher process: real QoS 1 PUBLISH packets, pre-encoded, written in chunks.

    A reader thread counts PUBACKs; at most WINDOW messages are unacknowledged (packet ids
    never collide). Timestamps are stamped into the pre-built packets as each chunk is sent,
    so latency is measured from the moment of sending. Paced when rate > 0.
    """
    templates = _packet_templates(pairs, messages, per_message, seq_base)
    sock = _mqtt_connect(port, f"bench-pub-{uuid.uuid4().hex[:6]}")
    acked = 0

    def count_acks() -> None:
        nonlocal acked
        pending = 0
        while acked < messages:
            data = sock.recv(65536)
            if not data:
                return
            pending += len(data)  # only PUBACKs (4 bytes) come to a publisher without subscriptions
            acked += pending // 4
            pending %= 4

    reader = threading.Thread(target=count_acks, daemon=True)
    reader.start()
    ready.put(os.getpid())
    go.wait()
    chunk = max(1, min(200, int(rate / 200))) if rate > 0 else max(1, 2000 // per_message)
    started = time.monotonic()
    sent = 0
    while sent < messages:
        while sent - acked > WINDOW:
            time.sleep(0.0005)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").encode()
        end = min(messages, sent + chunk)
        sock.sendall(b"".join(stamp.join(t) for t in templates[sent:end]))
        sent = end
        if rate > 0:
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    reader.join(600)
    elapsed = time.monotonic() - started
    sock.sendall(b"\xe0\x00")
    sock.close()
    done.put(elapsed)


def publish(
    port: int,
    pairs: list[tuple[str, str]],
    *,
    messages: int,
    per_message: int,
    rate: float,
    processes: int,
    seq_base: int,
) -> tuple[float, float]:
    """Publish from several processes once all are connected with their packets built.

    Returns (monotonic time of the go signal, seconds the slowest publisher took).
    """
    ready: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    done: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    go = mp.Event()
    procs = []
    for p in range(processes):
        share = pairs[p::processes]
        count = messages // processes + (1 if p < messages % processes else 0)
        procs.append(
            mp.Process(
                target=publish_worker,
                args=(port, share, count, per_message, rate / processes, seq_base, ready, go, done),
            )
        )
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)
    started = time.monotonic()
    go.set()
    took = max(done.get() for _ in procs)
    for proc in procs:
        proc.join()
    return started, took


def metric_sum(metrics_port: int, prefix: str) -> float:
    """The sum of every series of one metric on ingest's /metrics (all labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


def stored_from_metrics(metrics_port: int) -> int:
    """Readings ingest has stored, from its own /metrics (cheaper for everyone than count(*))."""
    return int(metric_sum(metrics_port, "pisman_ingest_readings_stored_total"))


def wait_stored(
    url: str, expected: int, *, timeout: float, metrics_port: int | None = None
) -> float:
    """Seconds (monotonic) at which the stored count reached `expected`."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if metrics_port is not None:
                count = stored_from_metrics(metrics_port)
            else:
                row = conn.execute(COUNT).fetchone()
                count = row[0] if row else 0
            if count >= expected:
                return time.monotonic()
            time.sleep(0.05)
        row = conn.execute(COUNT).fetchone()
    raise SystemExit(
        f"only {row[0] if row else 0} of {expected} readings stored after {timeout:.0f} s"
    )


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(COUNT).fetchone()
    return int(row[0]) if row else 0


def latency(url: str) -> tuple[float, float]:
    """p50 and p99 of received_at - ts in seconds (received_at is the storing transaction's start)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(LATENCY).fetchone()
        assert row is not None
        conn.execute(CLEAR)
    return float(row[0]), float(row[1])


class AckCounter:
    """Subscribes to every device's commit-ack topic (standing in for the devices) and counts."""

    def __init__(self, port: int) -> None:
        self.messages = 0
        self.bytes = 0
        ready = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-acks", protocol=mqtt.MQTTv5
        )

        def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
            self.messages += 1
            self.bytes += len(msg.payload)

        client.on_message = on_message
        client.on_subscribe = lambda c, u, mid, rc, p: ready.set()
        client.on_connect = lambda c, u, f, rc, p: c.subscribe("pisman/v1/+/+/ack", qos=1)
        client.connect("127.0.0.1", port)
        client.loop_start()
        if not ready.wait(10):
            raise SystemExit("the ack counter could not subscribe")
        self.client = client

    def settle(self, quiet_s: float = 1.0, timeout: float = 60.0) -> None:
        """Wait until no ack arrived for quiet_s (the last batch's acks are on their way)."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline and self.messages != last:
            last = self.messages
            time.sleep(quiet_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


BACKEND_NAMES = {"postgresql": "PostgreSQL", "timescaledb": "TimescaleDB"}
DEFAULT_ADMIN_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "timescaledb": "postgresql://postgres@127.0.0.1:5433/postgres",
}
SCENARIOS = ("single", "half", "batched")
VERSIONS = """
SELECT current_setting('server_version'),
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')
"""


@dataclass
class Target:
    """One backend: its server, the bench database created on it, the devices seeded there."""

    backend: str  # 'postgresql' or 'timescaledb': how the schema was built (checked)
    admin_url: str
    url: str
    label: str
    pairs: list[tuple[str, str]]


@dataclass(frozen=True)
class Variant:
    """Which source tree `pisman ingest` runs from (A/B comparisons in the same run)."""

    name: str
    folder: Path


def setup_target(backend: str | None, admin_url: str, devices: int, sql_dir: Path) -> Target:
    """Create, migrate and seed a bench database; check it took the expected backend's path."""
    url = admin_url.rsplit("/", 1)[0] + f"/pisman_bench_{uuid.uuid4().hex[:8]}"
    db.ensure_database(url)
    db.migrate(url, sql_dir)
    with psycopg.connect(url) as conn:
        kind = db.storage_kind(conn)
        row = conn.execute(VERSIONS).fetchone()
    assert row is not None
    server, timescale = str(row[0]).split()[0], row[1]
    if backend is not None and kind != backend:
        drop_database(admin_url, url)
        raise SystemExit(
            f"{admin_url} built the {kind} schema, not {backend}"
            + (": is TimescaleDB preloaded there?" if backend == "timescaledb" else "")
        )
    label = (
        f"TimescaleDB {timescale} (PostgreSQL {server})"
        if kind == "timescaledb"
        else f"PostgreSQL {server}"
    )
    return Target(kind, admin_url, url, label, seed(url, devices))


def drop_database(admin_url: str, url: str) -> None:
    """Drop a bench database (ignoring a server that went away)."""
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    except psycopg.Error as exc:
        print(f"could not drop {url.rsplit('/', 1)[1]}: {exc}", file=sys.stderr)


def start_ingest(
    url: str,
    broker: Mosquitto,
    metrics_port: int,
    args: argparse.Namespace,
    *,
    acks: bool,
    variant: Variant,
) -> subprocess.Popen[bytes]:
    """`pisman ingest` as a child process from the variant's source tree; returns once ready."""
    env = {
        **os.environ,
        "PYTHONPATH": str(variant.folder),  # ahead of the editable install of this checkout
        "PISMAN_SQL_DIR": str(args.sql_dir),
        "DATABASE_URL": url,
        "MQTT_URL": broker.url,
        "INGEST_CLIENT_ID": f"bench-{uuid.uuid4().hex[:6]}",
        "INGEST_METRICS_PORT": str(metrics_port),
        "INGEST_BATCH_SIZE": str(args.batch_size),
        "INGEST_FLUSH_MS": str(args.flush_ms),
        "INGEST_COMMIT_ACKS": "true" if acks else "false",
        "LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pisman", "ingest"],
        env=env,
        cwd=variant.folder,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    said: list[str] = []
    for line in proc.stderr:
        if b"ingest_ready" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc
        said.append(line.decode(errors="replace").rstrip())
    raise SystemExit(f"ingest ({variant.name}) did not start: " + " / ".join(said[-3:]))


PY_SPY = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")


class Profiler:
    """py-spy sampling a process into a collapsed-stacks file (when --profile is given)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [
                *(str(PY_SPY), "record", "--pid", str(pid), "--rate", "200", "--threads", "--gil"),
                *("--format", "raw", "--output", str(out)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """Ask py-spy to write its file and wait for it."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (load-independent, unlike wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a running process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def naive_worker(url: str, port: int, expected: int, ready: mp.Event) -> None:  # type: ignore[type-arg]
    """Baseline: on each message, one INSERT and one COMMIT, auto-ack."""
    conn = psycopg.connect(url, autocommit=True)
    seen = 0
    finished = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal seen
        _, _, site, device, _ = msg.topic.split("/")
        r = json.loads(msg.payload)
        conn.execute(
            NAIVE_INSERT, (r["ts"], site, device, r["seq"], r["net_kg"], r["material"], r["stream"])
        )
        seen += 1
        if seen >= expected:
            finished.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: (c.subscribe("pisman/v1/+/+/+", qos=1), ready.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    finished.wait(600)
    client.loop_stop()


def scenario(
    name: str,
    target: Target,
    broker: Mosquitto,
    args: argparse.Namespace,
    *,
    messages: int,
    per_message: int,
    rate: float,
    seq_base: int,
    acks: bool,
    variant: Variant,
    profile: Path | None = None,
) -> dict[str, float]:
    """Run one scenario against a fresh ingest process; print and return its figures."""
    url = target.url
    metrics_port = free_port()
    ingest = start_ingest(url, broker, metrics_port, args, acks=acks, variant=variant)
    counter = AckCounter(broker.port) if acks else None
    profiler = Profiler(ingest.pid, profile) if profile is not None else None
    cpu_before = cpu_seconds(ingest.pid)
    try:
        started, pub_s = publish(
            broker.port,
            target.pairs,
            messages=messages,
            per_message=per_message,
            rate=rate,
            processes=args.publishers,
            seq_base=seq_base,
        )
        readings = messages * per_message
        stored_at = wait_stored(url, readings, timeout=600, metrics_port=metrics_port)
        cpu = cpu_seconds(ingest.pid) - cpu_before
        db_seconds = metric_sum(metrics_port, "pisman_ingest_batch_seconds_sum")
        if profiler is not None:
            profiler.stop()
        assert _count(url) == readings, "ingest's stored counter disagrees with the table"
        p50, p99 = latency(url)
        memory = peak_rss_mib(ingest.pid)
        if counter is not None:
            counter.settle()
    finally:
        if profiler is not None and profiler.proc.poll() is None:
            profiler.stop()
        ingest.terminate()
        ingest.wait(30)
        if counter is not None:
            counter.close()
    elapsed = stored_at - started
    figures = {
        "readings": readings,
        "seconds": elapsed,
        "stored_per_s": readings / elapsed,
        "published_per_s": messages / pub_s,
        "p50_s": p50,
        "p99_s": p99,
        "ingest_peak_mib": memory,
        "ack_messages": counter.messages if counter else 0,
        "ack_bytes_per_reading": counter.bytes / readings if counter else 0.0,
        "load_1min": os.getloadavg()[0],
        "ingest_cpu_us_per_reading": cpu / readings * 1e6,
        "db_us_per_reading": db_seconds / readings * 1e6,
    }
    ack_note = (
        f" acks {counter.messages:,} msgs, {counter.bytes / readings:.1f} B/reading"
        if counter
        else " acks off"
    )
    print(
        f"{target.backend:<11} {variant.name:<8} {name:<42} {readings:>9} readings in {elapsed:6.1f} s"
        f" = {readings / elapsed:>9,.0f} readings/s (publish {messages / pub_s:,.0f} msg/s)"
        f" latency p50 {p50 * 1000:6.0f} ms p99 {p99 * 1000:6.0f} ms"
        f" ingest peak RSS {memory:.0f} MiB, CPU {cpu / readings * 1e6:.1f} µs/reading,"
        f" database {db_seconds / readings * 1e6:.1f} µs/reading{ack_note}"
        f" load {figures['load_1min']:.1f}",
        flush=True,
    )
    return figures


def naive(target: Target, broker: Mosquitto, args: argparse.Namespace, seq_base: int) -> float:
    """The baseline's sustained readings/s on one backend."""
    ready = mp.Event()
    worker = mp.Process(
        target=naive_worker, args=(target.url, broker.port, args.baseline_messages, ready)
    )
    worker.start()
    ready.wait(10)
    started, _took = publish(
        broker.port,
        target.pairs,
        messages=args.baseline_messages,
        per_message=1,
        rate=0,
        processes=args.publishers,
        seq_base=seq_base,
    )
    stored_at = wait_stored(target.url, args.baseline_messages, timeout=600)
    worker.join(30)
    if worker.is_alive():
        worker.kill()
    elapsed = stored_at - started
    p50, p99 = latency(target.url)
    rate = args.baseline_messages / elapsed
    print(
        f"{target.backend:<11} {'':<8} {'naive baseline (INSERT+COMMIT per message)':<42}"
        f" {args.baseline_messages:>9} readings in {elapsed:6.1f} s = {rate:>9,.0f} readings/s"
        f" latency p50 {p50 * 1000:6.0f} ms p99 {p99 * 1000:6.0f} ms",
        flush=True,
    )
    return rate


def store_only(args: argparse.Namespace, servers: list[tuple[str | None, str]]) -> int:
    """The store path alone (COPY, the store statement, commit: ingest.writer.Writer.commit),
    batch after batch of single-reading weighings, alternating between databases built from
    --sql-dir and --compare-sql-dir on each backend: an A/B of the SQL side without the broker."""
    from ingest.registry import Registry
    from ingest.validate import Validated, WeighingRow
    from ingest.writer import Incoming, Writer

    schemas = [("current", args.sql_dir)]
    if args.compare_sql_dir is not None:
        schemas.append(("compare", args.compare_sql_dir))
    targets: list[tuple[str, Target]] = []
    writers: list[Writer] = []
    try:
        for backend, admin_url in servers:
            for name, sql_dir in schemas:
                targets.append((name, setup_target(backend, admin_url, args.devices, sql_dir)))
                writers.append(Writer(targets[-1][1].url, Registry()))
        load = os.getloadavg()[0]
        seconds: list[list[float]] = [[] for _ in targets]
        base = datetime.now(UTC) - timedelta(hours=1)
        for n in range(args.store_only):
            for i, ((_, t), writer) in enumerate(zip(targets, writers, strict=True)):
                batch = []
                for k in range(args.batch_size):
                    seq = n * args.batch_size + k
                    site, device = t.pairs[seq % len(t.pairs)]
                    row = WeighingRow(
                        *(base + timedelta(milliseconds=seq), "benchcity", site, device, seq),
                        *(Decimal(1 + seq % 90), None, None, MATERIALS[seq % 5], "mixed"),
                        *(None, None, False, None, False),
                    )
                    topic = f"pisman/v1/{site}/{device}/weighing"
                    batch.append(Incoming(topic, b"{}", False, Validated([row], [], [], [])))
                outcome = writer.commit(batch)
                assert outcome is not None and outcome.stored_weighings == args.batch_size
                seconds[i].append(outcome.seconds)
        print(
            f"store path alone: {args.store_only} batches of {args.batch_size} single-reading"
            f" weighings from {args.devices} devices per database, alternating; load average"
            f" {load:.2f} at start, {os.getloadavg()[0]:.2f} at the end"
        )
        print("| backend | migrations | µs per reading: best batch | median batch |")
        print("|---|---|---:|---:|")
        for (name, t), times in zip(targets, seconds, strict=True):
            sql_dir = args.sql_dir if name == "current" else args.compare_sql_dir
            print(
                f"| {t.label} | {sql_dir} | {min(times) / args.batch_size * 1e6:.1f}"
                f" | {_median(times) / args.batch_size * 1e6:.1f} |"
            )
    finally:
        for writer in writers:
            writer.close()
        for _, t in targets:
            drop_database(t.admin_url, t.url)
    return 0


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _rate_cell(runs: list[dict[str, float]]) -> str:
    """Median readings/s, with the range when the scenario ran more than once."""
    rates = [r["stored_per_s"] for r in runs]
    cell = f"{_median(rates):,.0f}"
    if len(rates) > 1:
        cell += f" ({min(rates):,.0f}–{max(rates):,.0f})"
    return cell


def _seconds(s: float) -> str:
    return f"{s * 1000:,.0f} ms" if s < 1 else f"{s:.1f} s"


def markdown_table(
    targets: list[Target],
    rows: list[tuple[str, dict[str, list[dict[str, float]]]]],
    baselines: dict[str, list[float]],
    ratios: list[tuple[str, dict[str, list[dict[str, float]]]]],
) -> str:
    """One table, the backends side by side: each scenario, the naive baseline, the ratios."""
    head = ["scenario"]
    for t in targets:
        name = BACKEND_NAMES[t.backend]
        head += [
            f"{name}: readings/s",
            "p50 / p99",
            "µs/reading: ingest CPU / database",
            "peak RSS",
            "ack B/reading",
        ]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for label, by_backend in rows:
        cells = [label]
        for t in targets:
            runs = by_backend.get(t.backend, [])
            if not runs:
                cells += ["–"] * 5
                continue
            p50 = _median([r["p50_s"] for r in runs])
            p99 = _median([r["p99_s"] for r in runs])
            acks = _median([r["ack_bytes_per_reading"] for r in runs])
            cells += [
                _rate_cell(runs),
                f"{_seconds(p50)} / {_seconds(p99)}",
                f"{_median([r['ingest_cpu_us_per_reading'] for r in runs]):.0f}"
                f" / {_median([r['db_us_per_reading'] for r in runs]):.0f}",
                f"{max(r['ingest_peak_mib'] for r in runs):.0f} MiB",
                f"{acks:.1f}" if acks else "–",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["naive baseline: INSERT + COMMIT per message"]
    for t in targets:
        rates = baselines.get(t.backend, [])
        cell = f"{_median(rates):,.0f}" if rates else "–"
        if len(rates) > 1:
            cell += f" ({min(rates):,.0f}–{max(rates):,.0f})"
        cells += [cell, "", "", "", ""]
    lines.append("| " + " | ".join(cells) + " |")
    for label, by_backend in ratios:
        cells = [f"× naive: {label}"]
        for t in targets:
            runs, rates = by_backend.get(t.backend, []), baselines.get(t.backend, [])
            ratio = (
                _median([r["stored_per_s"] for r in runs]) / _median(rates)
                if runs and rates
                else None
            )
            cells += [f"{ratio:.1f}×" if ratio else "–", "", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _variant(text: str) -> Variant:
    name, sep, folder = text.partition("=")
    if not sep or not name or not Path(folder, "ingest", "service.py").is_file():
        raise argparse.ArgumentTypeError(
            f"{text!r}: give NAME=DIR where DIR holds a checkout (e.g. from `git archive`)"
        )
    return Variant(name, Path(folder).resolve())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--messages", type=int, default=100_000, help="single-reading messages at full speed"
    )
    parser.add_argument(
        "--batched-messages", type=int, default=10_000, help="messages of --per-batch readings"
    )
    parser.add_argument("--per-batch", type=int, default=100, help="readings per batched message")
    parser.add_argument(
        "--baseline-messages", type=int, default=10_000, help="messages for the naive baseline"
    )
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--publishers", type=int, default=1, help="publisher processes")
    parser.add_argument("--batch-size", type=int, default=2000, help="INGEST_BATCH_SIZE")
    parser.add_argument("--flush-ms", type=int, default=50, help="INGEST_FLUSH_MS")
    parser.add_argument(
        "--half-rate",
        type=float,
        default=0.0,
        help="msg/s for the latency run (default: half the slowest backend's full-speed rate)",
    )
    parser.add_argument(
        "--commit-acks",
        choices=("on", "off", "both"),
        default="on",
        help="INGEST_COMMIT_ACKS for the ingest scenarios; both: each scenario off, then on",
    )
    parser.add_argument(
        "--backends",
        default="postgresql,timescaledb",
        help="comma-separated: postgresql, timescaledb (default both, in the same run)",
    )
    parser.add_argument(
        "--postgresql-url",
        default=DEFAULT_ADMIN_URLS["postgresql"],
        help="admin URL of the plain PostgreSQL server",
    )
    parser.add_argument(
        "--timescaledb-url",
        default=DEFAULT_ADMIN_URLS["timescaledb"],
        help="admin URL of the server with TimescaleDB preloaded",
    )
    parser.add_argument(
        "--admin-url",
        default=None,
        help="run on this one server only (its backend is read from the schema it builds)",
    )
    parser.add_argument(
        "--sql-dir",
        type=Path,
        default=PROJECT_ROOT / "sql",
        help="migrations to build the bench databases from (e.g. an older checkout's sql/)",
    )
    parser.add_argument(
        "--store-only",
        type=int,
        default=0,
        metavar="BATCHES",
        help="measure only the store path (no broker): BATCHES batches of --batch-size per database",
    )
    parser.add_argument(
        "--compare-sql-dir",
        type=Path,
        default=None,
        help="with --store-only: also build each backend's database from these migrations",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated: single (full speed), half (paced), batched; the naive baseline always runs",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each scenario N times, interleaved (median shown)",
    )
    parser.add_argument(
        "--ingest-from",
        type=_variant,
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="A/B: also run ingest from this source tree (repeatable; `git archive` a commit)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record each full-speed single-reading run with py-spy (collapsed stacks) into DIR",
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in DEFAULT_ADMIN_URLS]
    if unknown or not backends:
        parser.error(
            f"--backends: unknown {', '.join(unknown) or 'empty'} (postgresql, timescaledb)"
        )
    args.backend_list = backends
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not scenarios or any(s not in SCENARIOS for s in scenarios):
        parser.error(f"--scenarios: choose from {', '.join(SCENARIOS)}")
    if "half" in scenarios and "single" not in scenarios and not args.half_rate:
        parser.error("--scenarios half without single needs --half-rate")
    args.scenario_list = scenarios
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.profile is not None and PY_SPY is None:
        parser.error("--profile needs py-spy (.venv/bin/pip install py-spy)")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every scenario on every backend (interleaved) and the baselines; print one table."""
    # Stopped from a background shell (SIGINT ignored there) or by SIGTERM: still drop the
    # databases and stop the broker and ingest (the finally blocks below).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    args = parse_args(argv)
    # The migrations as they are now: one added to the checkout during the run (others work in
    # it) would make every later ingest refuse the bench databases built before it.
    snapshot = Path(tempfile.mkdtemp(prefix="pisman-bench-sql-"))
    for migration in sorted(Path(args.sql_dir).glob("*.sql")):
        shutil.copy(migration, snapshot / migration.name)
    args.sql_dir = snapshot
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.commit_acks]
    variants = [Variant("current", PROJECT_ROOT), *args.ingest_from]
    if args.admin_url:
        servers: list[tuple[str | None, str]] = [(None, args.admin_url)]
    else:
        urls = {"postgresql": args.postgresql_url, "timescaledb": args.timescaledb_url}
        servers = [(b, urls[b]) for b in args.backend_list]

    if args.store_only:
        return store_only(args, servers)
    folder = Path(tempfile.mkdtemp(prefix="pisman-bench-"))
    broker = Mosquitto(folder, port=free_port())
    targets: list[Target] = []
    load_start = os.getloadavg()
    try:
        for backend, admin_url in servers:
            targets.append(setup_target(backend, admin_url, args.devices, args.sql_dir))
        broker.start()
        print(
            f"ingest benchmark: {args.devices} devices, {args.publishers} publisher processes, "
            f"batch {args.batch_size} / {args.flush_ms} ms, {os.cpu_count()} cores; "
            f"backends: {'; '.join(t.label for t in targets)}; "
            f"ingest: {', '.join(f'{v.name} ({v.folder})' for v in variants)}; "
            f"load average {' '.join(f'{x:.2f}' for x in load_start)}",
            flush=True,
        )
        # results[row label][backend] = figures of each run
        results: dict[str, dict[str, list[dict[str, float]]]] = {}
        seq_base = 0

        def run(key: str, name: str, t: Target, v: Variant, **kw: Any) -> dict[str, float]:
            nonlocal seq_base
            seq_base += 10_000_000
            label = name if len(variants) == 1 else f"{name} [{v.name}]"
            figures = scenario(name, t, broker, args, seq_base=seq_base, variant=v, **kw)
            results.setdefault(label, {}).setdefault(t.backend, []).append(figures)
            return figures

        ratio_rows: list[tuple[str, str]] = []
        for acks in modes:
            suffix = "" if len(modes) == 1 else (", acks on" if acks else ", acks off")
            full_rates: list[float] = []
            for key in args.scenario_list:
                for rep in range(args.repeat):
                    for t in targets:
                        for v in variants:
                            profile = (
                                args.profile / f"{t.backend}-{v.name}-{int(acks)}-{rep}.txt"
                                if args.profile is not None and key == "single"
                                else None
                            )
                            if key == "single":
                                name = f"single-reading QoS 1 messages, full speed{suffix}"
                                figures = run(
                                    key,
                                    name,
                                    t,
                                    v,
                                    messages=args.messages,
                                    per_message=1,
                                    rate=0,
                                    acks=acks,
                                    profile=profile,
                                )
                                full_rates.append(figures["stored_per_s"])
                                if rep == 0 and t is targets[0] and v is variants[0]:
                                    ratio_rows.append((f"single readings{suffix}", name))
                            elif key == "half":
                                # One rate for every backend and mode, so their latencies compare.
                                args.half_rate = args.half_rate or min(full_rates) / 2
                                name = (
                                    f"single readings paced at {args.half_rate:,.0f} msg/s{suffix}"
                                )
                                run(
                                    key,
                                    name,
                                    t,
                                    v,
                                    messages=int(args.half_rate * 20),
                                    per_message=1,
                                    rate=args.half_rate,
                                    acks=acks,
                                )
                            else:
                                name = f"batches of {args.per_batch} readings, full speed{suffix}"
                                run(
                                    key,
                                    name,
                                    t,
                                    v,
                                    messages=args.batched_messages,
                                    per_message=args.per_batch,
                                    rate=0,
                                    acks=acks,
                                )
                                if rep == 0 and t is targets[0] and v is variants[0]:
                                    ratio_rows.append((f"batched{suffix}", name))
        baselines: dict[str, list[float]] = {}
        for _rep in range(args.repeat):
            for t in targets:
                seq_base += 10_000_000
                baselines.setdefault(t.backend, []).append(naive(t, broker, args, seq_base))
        load_end = os.getloadavg()
        rows = list(results.items())
        ratios = [
            (
                f"{short}" + ("" if len(variants) == 1 else f" [{v.name}]"),
                results[name if len(variants) == 1 else f"{name} [{v.name}]"],
            )
            for short, name in ratio_rows
            for v in variants
        ]
        loads = [f["load_1min"] for by in results.values() for runs in by.values() for f in runs]
        print()
        print(markdown_table(targets, rows, baselines, ratios))
        print()
        print(
            f"Backends: {'; '.join(t.label for t in targets)}. {os.cpu_count()} cores. Load average"
            f" (1 min) {load_start[0]:.2f} at start, {min(loads, default=0):.2f}–"
            f"{max(loads, default=0):.2f} after the runs, {load_end[0]:.2f} at the end."
        )
        print(
            json.dumps(
                {
                    "targets": {t.backend: t.label for t in targets},
                    "results": results,
                    "baselines_per_s": baselines,
                    "load_start": load_start,
                    "load_end": load_end,
                }
            )
        )
    finally:
        broker.stop()
        for t in targets:
            drop_database(t.admin_url, t.url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
