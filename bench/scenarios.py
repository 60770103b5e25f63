"""The fixed benchmark scenarios: load generator arguments, the figures they yield, their floors."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Metric:
    """One figure read from a load generator result, and how ours is judged against it."""
    key: str                    # field of the loadgen JSON (or of the broker start record)
    label: str
    unit: str
    higher_is_better: bool
    min_ratio: float = None     # floor: ours / mosquitto at least this (throughput)
    max_value: float = None     # floor: ours at most this (latency, memory)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    loadgen_args: tuple
    metrics: tuple
    qos1: bool = False          # floor: nothing lost
    expect_conns: int = None    # floor: every connection held
    tags: tuple = field(default=())


def throughput(name, title, args, qos):
    return Scenario(name, title, args + ("--qos", str(qos), "--size", "64"),
                    (Metric("recv_mps", "msgs/s received", "msg/s", True, min_ratio=0.3),
                     # robust to other load on the machine: work done per second the broker ran
                     Metric("msgs_per_cpu_s", "msgs per broker CPU-second", "msg", True)), qos1=qos == 1)


def latency(name, title, qos):
    return Scenario(name, title, ("--mode", "latency", "--rate", "1000", "--duration", "5", "--qos", str(qos)),
                    (Metric("lat_p50_us", "latency p50", "us", False),
                     Metric("lat_p99_us", "latency p99", "us", False, max_value=2000)), qos1=qos == 1)


def idle(conns):
    return Scenario(f"idle{conns // 1000}k", f"{conns:,} idle connections",
                    ("--mode", "idle", "--conns", str(conns), "--duration", "3", "--connect-timeout", "60"),
                    (Metric("kb_per_conn", "RSS per idle connection", "KB", False, max_value=10),
                     Metric("rss_conn_kb", "RSS holding them", "KB", False),
                     Metric("conn_per_s", "connect rate", "conn/s", True)),
                    expect_conns=conns)


def all_scenarios(idle_conns=10000, duration=5):
    d = str(duration)
    return [
        throughput("fanin_q0", "fan-in 8->1, QoS 0, 64 B", ("--mode", "fanin", "--duration", d), 0),
        throughput("fanin_q1", "fan-in 8->1, QoS 1, 64 B", ("--mode", "fanin", "--duration", d), 1),
        throughput("fanout_q0", "fan-out 1->8, QoS 0, 64 B", ("--mode", "fanout", "--duration", d), 0),
        throughput("fanout_q1", "fan-out 1->8, QoS 1, 64 B", ("--mode", "fanout", "--duration", d), 1),
        latency("lat_q0", "latency at 1,000 msg/s, QoS 0", 0),
        latency("lat_q1", "latency at 1,000 msg/s, QoS 1", 1),
        idle(idle_conns),
    ]


# Start-up figures come from every broker start (each scenario starts a fresh broker).
STARTUP_METRICS = (
    Metric("rss_start_kb", "start-up RSS", "KB", False, max_value=40 * 1024),
    Metric("startup_s", "start-up time (to listening)", "s", False),
)
