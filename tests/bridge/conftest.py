"""Real upstreams for the bridge tests: Debian's mosquitto on a free loopback port (plain,
TLS, with a password file) and our own broker (the shared `broker_factory`).

mosquitto cannot report a port-0 bind, so a free port is taken from the kernel and handed
to it; a restarted mosquitto gets the same port back (the outage tests need that).
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # polling a port that has no event to await


class Mosquitto:
    """One mosquitto process and its generated config; `stop()` / `start()` for outages."""

    def __init__(self, directory: Path, port: int, extra: str = "", tls=None, passwords: dict | None = None):
        self.directory = directory
        self.port = port
        self.conf = directory / f"mosquitto-{port}.conf"
        lines = [f"user {getpass.getuser()}", "persistence false", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "max_queued_messages 100000", f"listener {port} 127.0.0.1"]
        if tls is not None:
            lines += [f"cafile {tls.ca}", f"certfile {tls.server_cert}", f"keyfile {tls.server_key}"]
        if passwords:
            password_file = directory / f"passwords-{port}"
            password_file.write_text("")
            for user, password in passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(password_file), user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines += ["allow_anonymous true"]
        self.conf.write_text("\n".join(lines) + "\n" + extra)
        self.log = directory / f"mosquitto-{port}.log"
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log.open("ab"))
        try:
            wait_listening(self.port)
        except OSError:
            self.stop()
            raise AssertionError("mosquitto did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)


@pytest.fixture
def mosquitto_factory(tmp_path):
    started: list[Mosquitto] = []

    def start(**kwargs) -> Mosquitto:
        instance = Mosquitto(tmp_path, kwargs.pop("port", None) or free_port(), **kwargs)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.fixture
def pki(tmp_path):
    from tests.security.tls_pki import Pki

    directory = tmp_path / "pki"
    directory.mkdir()
    return Pki(directory)
