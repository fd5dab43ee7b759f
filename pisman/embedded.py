"""Embedded servers for `pisman up` when none is configured: PostgreSQL (pgserver) and Mosquitto."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pisman.certs import BrokerCertificates, ensure_broker_certificates

# Payloads above this are refused by the broker (MQTT 5 PUBACK 0x95 "packet too large"); the
# protocol's largest batch is far below it. deploy/mosquitto.conf says the same.
MESSAGE_SIZE_LIMIT = 262144
# A client sending a larger packet is disconnected before the broker reads it into memory.
MAX_PACKET_SIZE = 1048576


class EmbeddedError(Exception):
    """An embedded server could not be started; str() says why and what to do."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def broker_limits() -> list[str]:
    """Mosquitto lines every broker we configure carries: bounded sizes, room for delayed acks."""
    return [
        f"message_size_limit {MESSAGE_SIZE_LIMIT}",
        f"max_packet_size {MAX_PACKET_SIZE}",
        # Ingest acknowledges only after commit: let many messages wait per client.
        "max_inflight_messages 1000",
        # Devices offline for hours flush backlogs and ingest may restart: queue, never drop.
        "max_queued_messages 1000000",
        "set_tcp_nodelay true",
    ]


def listener_lines(
    port: int, host: str, *, certs: BrokerCertificates | None = None, bind_client_ids: bool = True
) -> list[str]:
    """One Mosquitto listener; TLS when certs are given.

    bind_client_ids: the client id is the account's username, so no account can connect under
    another's id and take over its persistent session (ingest's above all). A listener option in
    Mosquitto, so every listener says it.
    """
    lines = [f"listener {port} {host}", "protocol mqtt"]
    if bind_client_ids:
        lines.append("use_username_as_clientid true")
    if certs is not None:
        lines += [f"certfile {certs.cert_file}", f"keyfile {certs.key_file}"]
    return lines


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) a PostgreSQL under data_dir with the pgserver package; return its URL."""
    try:
        import pgserver
    except ImportError:
        raise EmbeddedError(
            "no PostgreSQL is reachable and the embedded server package is missing: "
            "install it with `pip install pgserver`, or set DATABASE_URL"
        ) from None
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, like a real one; `pisman up` stops it
    # when it started it (Stack.stop), else it keeps running.
    server = pgserver.get_server(str(data_dir), cleanup_mode=None)
    uri = str(server.get_uri())
    # pgserver gives ".../postgres?host=<socket dir>"; our own database sits beside it.
    return uri.replace("/postgres?", "/pisman?", 1)


def stop_embedded_postgres(data_dir: Path) -> bool:
    """Stop the embedded PostgreSQL if it runs; True when one was stopped."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)  # fast shutdown
    except (ValueError, ProcessLookupError, IndexError):
        return False
    for _ in range(100):
        if not pid_file.exists():
            break
        time.sleep(0.1)
    return True


class BrokerPortTaken(EmbeddedError):
    """The broker's port was taken by another process (before or while it started)."""


@dataclass
class EmbeddedBroker:
    """A Mosquitto process of our own, with password and ACL files from the device registry.

    `pisman up` starts one; the test suite starts one per test or module (tests/support/broker.py)
    with anonymous=True where a test needs no accounts.
    """

    folder: Path
    port: int
    tls_port: int | None = None  # a TLS listener for devices as well, when set
    tls_host: str = "127.0.0.1"
    cert_hosts: list[str] = field(default_factory=list)  # names devices reach the broker by
    proc: subprocess.Popen[bytes] | None = None
    # Anyone may connect, with no password or ACL file (and so no client id bound to a username).
    anonymous: bool = False

    @property
    def password_file(self) -> Path:
        """Where the generated password file lives."""
        return self.folder / "passwords"

    @property
    def acl_file(self) -> Path:
        """Where the generated ACL file lives."""
        return self.folder / "acl"

    @property
    def pid_file(self) -> Path:
        """The broker's pid file (signalled to reload)."""
        return self.folder / "mosquitto.pid"

    @property
    def conf_file(self) -> Path:
        """The configuration written at each start."""
        return self.folder / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        """The broker's log."""
        return self.folder / "mosquitto.log"

    @property
    def certs(self) -> BrokerCertificates:
        """The TLS files (a CA made on first run; devices trust certs.ca_file)."""
        return BrokerCertificates(self.folder / "tls")

    def config_text(self) -> str:
        """Mosquitto configuration: authenticated, persistent, bounded, sized for delayed acks;
        plain MQTT on 127.0.0.1 for local services, TLS for devices when tls_port is set."""
        bind = not self.anonymous  # anonymous clients have no username to bind their id to
        lines = ["per_listener_settings false"]
        if self.anonymous:
            lines.append("allow_anonymous true")
        else:
            lines += [
                "allow_anonymous false",
                f"password_file {self.password_file}",
                f"acl_file {self.acl_file}",
            ]
        lines += [
            f"pid_file {self.pid_file}",
            "persistence true",
            f"persistence_location {self.folder}/",
            f"log_dest file {self.log_file}",
            *broker_limits(),
            *listener_lines(self.port, "127.0.0.1", bind_client_ids=bind),
        ]
        if self.tls_port is not None:
            lines += listener_lines(
                self.tls_port, self.tls_host, certs=self.certs, bind_client_ids=bind
            )
        if os.geteuid() == 0:
            lines.append("user root")  # keep read access to our 0600 password file
        return "\n".join(lines) + "\n"

    def log_text(self, since: int = 0) -> str:
        """What the broker logged (from byte `since` on), for error messages and readiness."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker (the password and ACL files must exist) and wait for it to listen.

        BrokerPortTaken when a port is taken, before the start or by another process binding it
        while this one started; EmbeddedError for any other failure.
        """
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if binary is None:
            raise EmbeddedError(
                "no MQTT broker is configured and mosquitto is not installed: "
                "install it (apt-get install mosquitto) or set MQTT_URL"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.anonymous:
            for path in (self.password_file, self.acl_file):
                if not path.exists():
                    path.write_text("")
                    path.chmod(0o600)
        if self.tls_port is not None:
            ensure_broker_certificates(self.certs.folder, self.cert_hosts)
        self.conf_file.write_text(self.config_text())
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        if port_open("127.0.0.1", self.port):
            raise BrokerPortTaken(
                f"port {self.port} is taken; set PISMAN_UP_MQTT_PORT to a free port"
            )
        if self.tls_port is not None and port_open(self._tls_probe_host, self.tls_port):
            raise BrokerPortTaken(
                f"port {self.tls_port} is taken; set PISMAN_UP_MQTTS_PORT to a free port"
            )
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            process_group=0,  # a terminal's Ctrl-C must not stop it before ingest has acked
        )
        self._wait_listening(timeout, log_start)

    @property
    def _tls_probe_host(self) -> str:
        return "127.0.0.1" if self.tls_host in ("0.0.0.0", "::") else self.tls_host

    def _wait_listening(self, timeout: float, log_start: int) -> None:
        """Return once this process (not another on the same port) listens on its ports.

        Its pid in the pid file is written before the listeners open, and a connection to the
        port may reach another process that took it meanwhile: only this broker's own log of
        our probe connection (in what it logged since log_start, this start) proves the port is
        its own.
        """
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode().strip() if self.proc.stderr else ""
                text = f"{err} {self.log_text(log_start)}".strip()
                if "Address already in use" in text:
                    raise BrokerPortTaken(
                        f"a port of the broker was taken while it started: {text}"
                    )
                raise EmbeddedError(f"mosquitto exited at start: {text}")
            try:
                ours = self.pid_file.read_text().strip() == str(self.proc.pid)
            except OSError:
                ours = False
            probes = [("127.0.0.1", self.port)]
            if self.tls_port is not None:
                probes.append((self._tls_probe_host, self.tls_port))
            if ours and all(port_open(host, port, 0.2) for host, port in probes):
                probe_logged = re.compile(rf"New connection from \S+ on port {self.port}\.")
                until = min(deadline, time.monotonic() + 2)
                while time.monotonic() < until and self.proc.poll() is None:
                    if probe_logged.search(self.log_text(log_start)):
                        return
                    time.sleep(0.05)
                continue
            time.sleep(0.05)
        raise EmbeddedError(
            f"mosquitto did not start listening on port {self.port}: "
            f"{self.log_text(log_start)[-500:]}"
        )

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
