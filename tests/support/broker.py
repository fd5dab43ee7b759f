"""A private Mosquitto for one test: its own config, port, password and ACL files."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from pisman.certs import BrokerCertificates
from pisman.embedded import broker_limits, listener_lines


def binary_path() -> str:
    """The mosquitto executable (Debian installs it in /usr/sbin)."""
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """Start and stop a mosquitto process with a generated configuration."""

    def __init__(
        self,
        folder: Path,
        *,
        port: int,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        extra: str = "",
        tls_port: int | None = None,
        certs: BrokerCertificates | None = None,
    ) -> None:
        self.folder = folder
        self.port = port
        self.tls_port = tls_port  # a TLS listener too (needs certs)
        self.certs = certs
        self.password_file = password_file
        self.acl_file = acl_file
        self.extra = extra
        self.conf = folder / "mosquitto.conf"
        self.pid_file = folder / "mosquitto.pid"
        self.log_file = folder / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        """Write the config file for the current options (the limits every broker we ship has;
        client ids bound to usernames when clients authenticate)."""
        bind = self.password_file is not None  # anonymous clients have no username to bind to
        lines = [
            f"pid_file {self.pid_file}",
            "persistence true",
            f"persistence_location {self.folder}/",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            *broker_limits(),
            *listener_lines(self.port, "127.0.0.1", bind_client_ids=bind),
        ]
        if self.tls_port is not None:
            assert self.certs is not None, "a TLS listener needs certs"
            lines += listener_lines(
                self.tls_port, "127.0.0.1", certs=self.certs, bind_client_ids=bind
            )
        if os.geteuid() == 0:
            # Otherwise mosquitto drops to its own user and cannot read our 0600 files.
            lines.append("user root")
        if self.password_file:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        if self.extra:
            lines.append(self.extra)
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0, attempts: int = 5) -> None:
        """Start the broker and wait until it accepts connections. free_port() only finds a port
        that was free a moment ago: when another test's server takes it first, mosquitto exits
        with "Address already in use" (while a connect to the port reaches the other server), so
        readiness also requires our own pid in the pid file, and a taken port is replaced by a
        new one (self.port, self.tls_port) and the start retried."""
        for attempt in range(attempts):
            self.write_config()
            self.proc = subprocess.Popen(
                [binary_path(), "-c", str(self.conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if self._wait_ready(timeout):
                return
            if attempt + 1 < attempts:
                self.port = free_port()
                if self.tls_port is not None:
                    self.tls_port = free_port()
        raise RuntimeError(f"mosquitto found no free port in {attempts} attempts")

    def _wait_ready(self, timeout: float) -> bool:
        """True once this process listens; False when its port was taken; raises otherwise."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                text = f"{err} {self.log_text()}"
                if "Address already in use" in text:
                    return False
                raise RuntimeError(f"mosquitto exited: {text}")
            try:
                ours = self.pid_file.read_text().strip() == str(self.proc.pid)
            except OSError:
                ours = False
            if ours:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        pass
                    if self.tls_port is not None:
                        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.2):
                            pass
                except OSError:
                    pass
                else:
                    # The pid file is written before the listeners open: only our broker's own
                    # log of the probe shows that the port is its own.
                    probe_logged = f"on port {self.port}."
                    until = time.monotonic() + 2
                    while time.monotonic() < until and self.proc.poll() is None:
                        if probe_logged in self.log_text():
                            return True
                        time.sleep(0.05)
                    continue
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log_text()}")

    def reload(self) -> None:
        """Make the broker re-read its password and ACL files (SIGHUP)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log_text(self) -> str:
        """What the broker logged (for failure messages)."""
        return self.log_file.read_text() if self.log_file.exists() else ""

    @property
    def url(self) -> str:
        """mqtt:// URL without credentials."""
        return f"mqtt://127.0.0.1:{self.port}"
