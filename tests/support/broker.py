"""A private Mosquitto for one test: the product's launcher (pisman.embedded.EmbeddedBroker, the
one `pisman up` uses) on a free port, in the test's own folder, with its own config, password and
ACL files, or anonymous."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from pisman.certs import BrokerCertificates
from pisman.embedded import BrokerPortTaken, EmbeddedBroker


def binary_path() -> str:
    """The mosquitto executable (Debian installs it in /usr/sbin)."""
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
