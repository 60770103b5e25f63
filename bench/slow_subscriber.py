"""A QoS 1 subscriber that never reads, while 2,400 x 256 KB messages are published
(issue 10): the broker's RSS growth, its RSS after that subscriber leaves, and another
client's publish-to-receive latency meanwhile (a QoS 0 message every 10 ms).

    .venv/bin/python -m bench.slow_subscriber [--repeat 3] [--brokers appliance,mosquitto]

Brokers start fresh per run, alternately, pinned like the main benchmark (broker on core
0, this process on core 1). mosquitto runs with its default max_queued_messages (1000),
the appliance with its defaults (limits.max_outbox_bytes 4MB, limits.max_queued_bytes
64MB, mqtt.max_mqueue_len 2048). Timing figures, not assertions: the machine is shared.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.brokers import REPO, Broker
from bench.procstat import rss_kb
from bench.wire import connect, subscribe, varint

MESSAGES = 2400
PAYLOAD = 256 * 1024
BATCH = 50
CONTROL_INTERVAL = 0.010
STAMP = struct.Struct(">Q")


def _string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def _publish(topic, payload, qos, packet_id=0):
    body = _string(topic) + (struct.pack(">H", packet_id) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + varint(len(body)) + body


def _session(port, client_id, rcvbuf=None):
    sock = socket.create_connection(("127.0.0.1", port))
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect(client_id))
    assert _read_exact(sock, 4)[0] == 0x20
    return sock


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _control_reader(sock, latencies, stop):
    buf = bytearray()
    while not stop.is_set():
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        now = time.perf_counter_ns()
        while len(buf) >= 2:
            length, shift, pos = 0, 0, 1
            while True:
                if pos >= len(buf):
                    break
                byte = buf[pos]
                length |= (byte & 0x7F) << shift
                shift += 7
                pos += 1
                if not byte & 0x80:
                    break
            if pos + length > len(buf):
                break
            if buf[0] >> 4 == 3:
                topic_len = struct.unpack_from(">H", buf, pos)[0]
                (sent,) = STAMP.unpack_from(buf, pos + 2 + topic_len)
                latencies.append((now - sent) / 1e6)
            del buf[:pos + length]


def run_once(broker, results_dir):
    port = broker.port
    stuck = _session(port, "stuck", rcvbuf=4096)
    stuck.sendall(subscribe(1, "big", 1))
    control_sub = _session(port, "control-sub")
    control_sub.sendall(subscribe(1, "ctl", 0))
    assert _read_exact(control_sub, 5)[0] == 0x90
    control_pub = _session(port, "control-pub")
    bulk = _session(port, "bulk")
    time.sleep(0.5)
    baseline = peak = rss_kb(broker.pid)
    latencies, stop = [], threading.Event()
    reader = threading.Thread(target=_control_reader, args=(control_sub, latencies, stop), daemon=True)
    reader.start()

    def control():
        while not stop.is_set():
            control_pub.sendall(_publish("ctl", STAMP.pack(time.perf_counter_ns()), 0))
            time.sleep(CONTROL_INTERVAL)

    ticker = threading.Thread(target=control, daemon=True)
    ticker.start()
    payload = b"b" * PAYLOAD
    started = time.perf_counter()
    for first in range(1, MESSAGES + 1, BATCH):
        bulk.sendall(b"".join(_publish("big", payload, 1, i) for i in range(first, first + BATCH)))
        _read_exact(bulk, 4 * BATCH)  # the PUBACKs
        peak = max(peak, rss_kb(broker.pid))
    bulk_seconds = time.perf_counter() - started
    stop.set()
    ticker.join()
    stuck.close()
    time.sleep(3.0)  # the broker notices, frees, and (the appliance) gives large buffers back
    after = rss_kb(broker.pid)
    for sock in (control_sub, control_pub, bulk):
        sock.close()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None  # noqa: E731
    return {
        "broker": broker.name, "rss_baseline_mb": baseline / 1024, "rss_growth_mb": (peak - baseline) / 1024,
        "rss_after_mb": (after - baseline) / 1024, "bulk_seconds": bulk_seconds, "control_samples": len(latencies),
        "control_p50_ms": pick(0.5), "control_p99_ms": pick(0.99), "control_max_ms": latencies[-1] if latencies else None,
    }


def _broker(name, port, workdir, python):
    if name == "appliance":
        conf = Path(workdir) / "appliance-slow.conf"
        conf.write_text(f'listeners.tcp {{ bind = "127.0.0.1:{port}" }}\nlog {{ level = warn }}\n')
        return Broker("appliance", [python, "-m", "appliance", "--conf", str(conf)], port, 0,
                      Path(workdir) / "appliance.log", cwd=REPO)
    conf = Path(workdir) / "mosquitto-slow.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n")
    conf.chmod(0o644)
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return Broker("mosquitto", [exe, "-c", str(conf)], port, 0, Path(workdir) / "mosquitto.log")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--brokers", default="appliance,mosquitto")
    parser.add_argument("--port", type=int, default=18851)
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    args = parser.parse_args(argv)
    names = args.brokers.split(",")
    try:
        os.sched_setaffinity(0, {1})
    except OSError:
        pass
    workdir = tempfile.mkdtemp(prefix="slow-subscriber-")
    rows = []
    for repeat in range(args.repeat):
        for name in names if repeat % 2 == 0 else names[::-1]:
            with _broker(name, args.port, workdir, args.python) as broker:
                row = run_once(broker, workdir)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for name in names:
        mine = [r for r in rows if r["broker"] == name]
        med = lambda key: sorted(r[key] for r in mine)[len(mine) // 2]  # noqa: E731
        print(f"{name}: RSS growth {med('rss_growth_mb'):.0f} MB, after it left +{med('rss_after_mb'):.0f} MB, "
              f"control p50/p99/max {med('control_p50_ms'):.2f}/{med('control_p99_ms'):.2f}/"
              f"{med('control_max_ms'):.1f} ms, bulk {med('bulk_seconds'):.1f} s (medians of {len(mine)})")


if __name__ == "__main__":
    sys.exit(main())
