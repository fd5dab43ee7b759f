"""A private Mosquitto for one test: the product's launcher (pisman.embedded.EmbeddedBroker, the
one `pisman up` uses) on a free port, in the test's own folder, with its own config, password and
ACL files, or anonymous."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from pisman.certs import BrokerCertificates
from pisman.embedded import BrokerPortTaken, EmbeddedBroker


def binary_path() -> str:
    """The mosquitto executable (Debian installs it in /usr/sbin)."""
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 20000  # above every service this machine runs (PostgreSQL, MariaDB, Redis, ...)
_WORKERS = 16  # xdist workers the port block is split between (gw0 .. gw15)
_cursor: list[int] = []  # this process's next offset into its block, once it has picked one


def _port_block() -> tuple[int, int]:
    """This process's own ports: a slice, by xdist worker, of those below the kernel's ephemeral
    range. The kernel hands ephemeral ports to outgoing connections (psycopg, httpx, paho): a
    port picked with bind(0) and closed again was often taken by one of those before the server
    meant for it could bind it ("Address already in use"). Ports below the range are never
    handed out by the kernel, and each worker has its own slice, so two workers never pick the
    same one either."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % _WORKERS if worker.isdigit() else 0
    size = (low - _LOWEST_PORT) // _WORKERS
    if size < 64:
        return (0, 0)  # an unusual kernel setting: fall back to the kernel's choice
    start = _LOWEST_PORT + index * size
    return (start, start + size)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now, from this worker's own block (see
    _port_block); consecutive calls give different ports."""
    start, end = _port_block()
    if start == end:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    size = end - start
    if not _cursor:  # processes one after another start at different places of the block
        _cursor.append(os.getpid() * 7 % size)
    for _ in range(size):
        candidate = start + _cursor[0] % size
        _cursor[0] += 1
        if _bindable(candidate):
            return candidate
    raise RuntimeError(f"no free TCP port in {start}-{end - 1}")


class Mosquitto(EmbeddedBroker):
    """The product's broker with a test's files: anonymous unless a password file is given;
    `extra` lines appended to the configuration; a taken port replaced and the start retried."""

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
        if (acl_file is None) != (password_file is None):
            raise ValueError("give both a password file and an ACL file, or neither (anonymous)")
        if tls_port is not None and certs is None:
            raise ValueError("a TLS listener needs certs")
        super().__init__(folder, port, tls_port=tls_port, anonymous=password_file is None)
        self._password_file = password_file
        self._acl_file = acl_file
        self._certs = certs
        self.extra = extra

    @property
    def password_file(self) -> Path:
        """The test's password file (unused when anonymous)."""
        return self._password_file or super().password_file

    @property
    def acl_file(self) -> Path:
        """The test's ACL file (unused when anonymous)."""
        return self._acl_file or super().acl_file

    @property
    def certs(self) -> BrokerCertificates:
        """The TLS files the test made (or the product's default place)."""
        return self._certs or super().certs

    @property
    def conf(self) -> Path:
        """The configuration file (the name tests have used)."""
        return self.conf_file

    def config_text(self) -> str:
        """The product's configuration, plus the test's extra lines."""
        return super().config_text() + (self.extra + "\n" if self.extra else "")

    def write_config(self) -> None:
        """Write the config file for the current options (start() does it too)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(self.config_text())

    def start(self, timeout: float = 10.0, attempts: int = 5) -> None:
        """Start the broker and wait until it accepts connections. free_port() only finds a port
        that was free a moment ago: another test's server may take it first; then the port (and
        the TLS port) is replaced by a new free one and the start retried."""
        for attempt in range(attempts):
            try:
                super().start(timeout)
                return
            except BrokerPortTaken:
                if attempt + 1 == attempts:
                    break
                self.port = free_port()
                if self.tls_port is not None:
                    self.tls_port = free_port()
        raise RuntimeError(f"mosquitto found no free port in {attempts} attempts")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL)."""
        super().stop()
        self.proc = None

    @property
    def url(self) -> str:
        """mqtt:// URL without credentials."""
        return f"mqtt://127.0.0.1:{self.port}"
