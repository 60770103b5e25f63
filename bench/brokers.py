"""Start a broker pinned to one core on a loopback port, time its start-up, and stop it.

A broker here is only a command line that listens on 127.0.0.1:PORT: the appliance and
mosquitto are started the same way, so their figures compare.
"""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench.procstat import rss_kb

REPO = Path(__file__).resolve().parent.parent

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
connection_messages false
log_dest stderr
log_type error
log_type warning
# The default (1000) makes mosquitto drop QoS 1 messages in 8->1 fan-in: it reads one packet
# per socket per loop pass, so the subscriber's PUBACKs queue behind the publishers' PUBLISHes
# and its unacknowledged count passes the limit.  0 = no limit: it does all the work it is
# credited with (see /work/shared/bench/README.md, "Notes and pitfalls").
max_queued_messages 0
"""

# limits: all 10,000 idle connections come from 127.0.0.1 within seconds; the defaults (500
# new connections per source IP per second, 10,000 open) would refuse them, and mosquitto,
# the peer, runs without such limits.
APPLIANCE_CONF = """\
listeners.tcp {{ bind = "127.0.0.1:{port}" }}
log {{ level = warn }}
mqtt {{ max_mqueue_len = 100000, max_inflight_window = 1024 }}
limits {{ max_connections = 20000, max_connection_rate = 0 }}
"""


class BrokerError(Exception):
    """A broker could not be started (port taken, exited, never listened)."""


def listening(port):
    """True if something listens on TCP port (any address), read from /proc without connecting."""
    hex_port = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and fields[1].endswith(hex_port):
                        return True
        except OSError:
            continue
    return False


class Broker:
    """One broker process: a fresh one per scenario, so every RSS figure starts clean."""

    def __init__(self, name, argv, port, cpu, log_path, cwd=None):
        self.name, self.argv, self.port, self.cpu = name, argv, port, cpu
        self.log_path, self.cwd = log_path, cwd
        self.proc = None
        self.startup_s = None
        self.rss_start_kb = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, settle=0.5, timeout=30):
        if listening(self.port):
            raise BrokerError(f"port {self.port} is already in use: refusing to measure someone else's broker")
        argv = self.argv if self.cpu is None else ["taskset", "-c", str(self.cpu)] + self.argv
        log = open(self.log_path, "ab")
        t0 = time.perf_counter()
        # taskset execs the broker, so proc.pid is the broker itself; its own session lets
        # stop() signal its process group and nothing else.
        self.proc = subprocess.Popen(argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        while not listening(self.port):
            if self.proc.poll() is not None:
                raise BrokerError(f"{self.name} exited with {self.proc.returncode} at start; see {self.log_path}")
            if time.perf_counter() - t0 > timeout:
                self.stop()
                raise BrokerError(f"{self.name} did not listen on {self.port} within {timeout} s; see {self.log_path}")
            time.sleep(0.005)
        self.startup_s = time.perf_counter() - t0
        time.sleep(settle)                 # let start-up work finish before the idle RSS sample
        self.rss_start_kb = rss_kb(self.pid)
        return self

    def stop(self, timeout=5):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def mosquitto(port, cpu, workdir):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        raise BrokerError("mosquitto is not installed: apt-get install -y mosquitto (bench/run.sh does it)")
    conf = Path(workdir) / f"mosquitto-{port}.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port))
    conf.chmod(0o644)                  # mosquitto drops root privileges after reading it
    return Broker("mosquitto", [exe, "-c", str(conf)], port, cpu, Path(workdir) / "mosquitto.log")


def appliance(port, cpu, workdir, python, extra_conf=""):
    conf = Path(workdir) / f"appliance-{port}.conf"
    conf.write_text(APPLIANCE_CONF.format(port=port) + extra_conf)
    return Broker("appliance", [python, "-m", "appliance", "--conf", str(conf)], port, cpu,
                  Path(workdir) / "appliance.log", cwd=REPO)


def mosquitto_version():
    try:
        out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None
