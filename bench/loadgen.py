"""MQTT load generator for the benchmark: one process, epoll, raw sockets, pre-encoded packets.

    python -m bench.loadgen --port 18841 --mode fanin --pubs 8 --subs 1 --qos 1 --duration 5
    python -m bench.loadgen --port 18841 --mode latency --rate 1000 --qos 0
    python -m bench.loadgen --port 18841 --mode idle --conns 10000 --pid BROKER_PID

Prints one JSON line.  Every payload carries (publisher, sequence, send time), so loss,
duplicates and latency are counted per publisher per subscriber.  What keeps Python off the
critical path: PUBLISH batches are one bytearray filled by one pack_into per message and sent
with one send(); reads are 256 KB; the incoming stream of equal-sized PUBLISH records is checked
with strided slices (C speed) and decoded with struct.iter_unpack; QoS 1 PUBACKs for a whole
read are built with two strided slice assignments.  Anything unexpected in a stream falls back
to a byte-by-byte framer.
"""
import argparse
import errno
import json
import os
import resource
import select
import socket
import struct
import sys
import time

from bench import wire
from bench.procstat import ProcSampler

READ_SIZE = 256 * 1024
BATCH_MAX = 256          # PUBLISH packets per send


class ProtocolFailure(Exception):
    """The broker answered something the load generator cannot accept (refused CONNECT, EOF)."""


class Conn:
    """A non-blocking MQTT connection with an outgoing buffer and a reusable read buffer."""

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.out = bytearray()
        self.buf = bytearray(READ_SIZE)
        self.mv = memoryview(self.buf)
        self.end = 0
        self.writable_wanted = False

    def read(self):
        """Append what the socket has to the buffer; False on EOF."""
        if self.end == len(self.buf):
            raise ProtocolFailure("packet larger than the read buffer")
        try:
            n = self.sock.recv_into(self.mv[self.end:])
        except BlockingIOError:
            return True
        except ConnectionError:
            return False
        if not n:
            return False
        self.end += n
        return True

    def compact(self, pos):
        rest = self.end - pos
        if rest and pos:
            self.buf[0:rest] = self.buf[pos:self.end]
        self.end = rest

    def flush(self):
        """Send as much of the outgoing buffer as the socket takes; True when it is empty."""
        out = self.out
        while out:
            try:
                n = self.sock.send(out)
            except BlockingIOError:
                return False
            del out[:n]
        return True


class Publisher(Conn):
    """Publishes pre-encoded batches on its own topic; counts PUBACKs at QoS 1."""

    def __init__(self, sock, index, layout, batch_max):
        super().__init__(sock)
        self.index = index
        self.layout = layout
        self.batch = layout.batch(batch_max)
        self.sent = 0
        self.acked = 0
        self.pack = wire.STAMP_WITH_PID.pack_into if layout.qos else wire.STAMP.pack_into
        self.offset = layout.pid_offset if layout.qos else layout.stamp_offset
        self.ack_headers = b"\x40" * (READ_SIZE // 4)

    def publish(self, n, now_ns):
        buf, pack, size, index, seq = self.batch, self.pack, self.layout.size, self.index, self.sent
        off = self.offset
        if self.layout.qos:
            for i in range(n):
                s = seq + i
                pack(buf, off + i * size, s % 65535 + 1, index, s, now_ns)
        else:
            for i in range(n):
                pack(buf, off + i * size, index, seq + i, now_ns)
        self.out += memoryview(buf)[: n * size]
        self.sent += n

    def consume(self, _now_ns):
        buf, pos, end = self.buf, 0, self.end
        while True:
            k = (end - pos) // 4
            if k and buf[pos:pos + 4 * k:4] == self.ack_headers[:k]:
                self.acked += k              # PUBACKs arrive in order; ids are not checked
                pos += 4 * k
                continue
            frame = wire.split_packet(buf, pos, end)
            if frame is None:
                break
            ptype, _flags, _start, pos = frame
            if ptype == 4:
                self.acked += 1
            elif ptype != 13:                # PINGRESP is harmless
                raise ProtocolFailure(f"publisher {self.index} got packet type {ptype}")
        self.compact(pos)


class Subscriber(Conn):
    """Receives every publisher's stream; checks sequence numbers per publisher; PUBACKs QoS 1."""

    def __init__(self, sock, layout, publishers, record_latency):
        super().__init__(sock)
        self.layout = layout
        self.size = layout.size
        self.next_seq = [0] * publishers
        self.received = 0
        self.gap_lost = 0
        self.gaps = 0
        self.dups = 0
        self.written_off = 0
        self.latencies = [] if record_latency else None
        self.samples = []                    # one latency per read in throughput runs
        n = READ_SIZE // layout.size + 1
        self.header_run = bytes([layout.header_byte]) * n
        self.length_run = bytes([layout.length_byte]) * n
        self.ack_template = bytearray(b"\x40\x02\x00\x00" * n)

    @property
    def progress(self):
        """Messages accounted for: received in order, skipped over (lost), or written off."""
        return sum(self.next_seq) + self.written_off

    def consume(self, now_ns):
        buf, end, size = self.buf, self.end, self.size
        pos = 0
        while True:
            k = (end - pos) // size
            if k:
                stop = pos + k * size
                heads = buf[pos:stop:size]
                lens = buf[pos + 1:stop:size]
                if heads != self.header_run[:k] or lens != self.length_run[:k]:
                    k = next(j for j in range(k) if heads[j] != self.header_run[0] or lens[j] != self.length_run[0])
                if k:
                    self._records(pos, k, now_ns)
                    pos += k * size
                    continue
            frame = wire.split_packet(buf, pos, end)
            if frame is None:
                break
            ptype, flags, start, nxt = frame
            if ptype == 3:
                pid, pub, seq, ts = wire.publish_stamp(buf, flags, start, nxt)
                if pub is None or pub >= len(self.next_seq):
                    raise ProtocolFailure("PUBLISH without a valid stamp")
                self._one(pub, seq, ts, now_ns)
                if pid is not None:
                    self.out += wire.puback(pid)
            elif ptype not in (9, 13):       # late SUBACK, PINGRESP
                raise ProtocolFailure(f"subscriber got packet type {ptype}")
            pos = nxt
        self.compact(pos)

    def _records(self, pos, k, now_ns):
        nxt = self.next_seq
        size = self.size
        ts = 0
        if self.latencies is None:
            for pub, seq, ts in self.layout.record.iter_unpack(self.mv[pos:pos + k * size]):
                if seq == nxt[pub]:
                    nxt[pub] = seq + 1
                else:
                    self._out_of_order(pub, seq)
            self.samples.append(now_ns - ts)
        else:
            lat = self.latencies
            for pub, seq, ts in self.layout.record.iter_unpack(self.mv[pos:pos + k * size]):
                lat.append(now_ns - ts)
                if seq == nxt[pub]:
                    nxt[pub] = seq + 1
                else:
                    self._out_of_order(pub, seq)
        self.received += k
        if self.layout.qos:
            o = pos + self.layout.pid_offset
            acks = self.ack_template[:4 * k]
            acks[2::4] = self.buf[o:pos + k * size:size]
            acks[3::4] = self.buf[o + 1:pos + k * size:size]
            self.out += acks

    def _one(self, pub, seq, ts, now_ns):
        self.received += 1
        if self.latencies is not None:
            self.latencies.append(now_ns - ts)
        if seq == self.next_seq[pub]:
            self.next_seq[pub] = seq + 1
        else:
            self._out_of_order(pub, seq)

    def _out_of_order(self, pub, seq):
        expected = self.next_seq[pub]
        if seq > expected:
            self.gaps += 1
            self.gap_lost += seq - expected
            self.next_seq[pub] = seq + 1
        else:
            self.dups += 1


def open_session(port, client_id, keepalive, timeout):
    """Blocking CONNECT/CONNACK, then non-blocking; small counts only (idle mode has its own)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(wire.connect(client_id, keepalive))
    ack = _recv_exact(sock, 4)
    if ack[0] != 0x20 or ack[3] != 0:
        raise ProtocolFailure(f"CONNECT refused: {ack.hex()}")
    return sock


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ProtocolFailure("broker closed the connection during set-up")
        data += chunk
    return data


def subscribe(sock, topic_filter, qos):
    sock.sendall(wire.subscribe(1, topic_filter, qos))
    ack = _recv_exact(sock, 5)
    if ack[0] != 0x90 or ack[4] & 0x80:
        raise ProtocolFailure(f"SUBSCRIBE refused: {ack.hex()}")


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Flow:
    """Runs publishers and subscribers on one epoll until the time is up, then drains."""

    def __init__(self, args, sampler):
        self.args = args
        self.sampler = sampler
        self.ep = select.epoll()
        self.conns = {}
        self.pubs = []
        self.subs = []
        self.resets = 0

    def setup(self):
        a = self.args
        run = f"{os.getpid() % 100000:05d}"
        base = f"bench/{run}"
        fanin = a.mode == "fanin"
        filt = f"{base}/p/#" if fanin else f"{base}/p/000"
        for i in range(a.subs):
            sock = open_session(a.port, f"bench-{run}-s{i}", 60, a.connect_timeout)
            subscribe(sock, filt, a.qos)
            sock.setblocking(False)
            layout = wire.PublishLayout(f"{base}/p/000", a.qos, a.size)
            self._add(Subscriber(sock, layout, a.pubs, a.mode == "latency"))
        self.batch = max(1, min(BATCH_MAX, a.window // 4)) if a.mode != "latency" else 1
        for i in range(a.pubs):
            sock = open_session(a.port, f"bench-{run}-p{i}", 60, a.connect_timeout)
            sock.setblocking(False)
            self._add(Publisher(sock, i, wire.PublishLayout(f"{base}/p/{i:03d}", a.qos, a.size), BATCH_MAX))

    def _add(self, conn):
        self.conns[conn.fd] = conn
        (self.subs if isinstance(conn, Subscriber) else self.pubs).append(conn)
        self.ep.register(conn.fd, select.EPOLLIN)

    def _want_write(self, conn, want):
        if conn.writable_wanted != want:
            conn.writable_wanted = want
            self.ep.modify(conn.fd, select.EPOLLIN | (select.EPOLLOUT if want else 0))

    def _flush(self, conn):
        self._want_write(conn, not conn.flush())

    def sent(self):
        return sum(p.sent for p in self.pubs)

    def received(self):
        return sum(s.received for s in self.subs)

    def outstanding(self):
        return self.sent() - min(s.progress for s in self.subs)

    def refill(self, now_ns):
        """Once a batch's worth of the end-to-end window is free, spend all of it, at most
        BATCH_MAX per publisher (and the QoS 1 in-flight limit): a window kept full gives the
        broker big reads, as a real fan-in would."""
        a = self.args
        room = a.window - self.outstanding()
        if room < self.batch:
            return
        for p in self.pubs:
            if room <= 0:
                break
            if p.out:
                continue
            n = min(BATCH_MAX, room)
            if a.qos:
                free = a.inflight - (p.sent - p.acked)
                if free < max(1, a.inflight // 4):
                    continue
                n = min(n, free)
            p.publish(n, now_ns)
            self._flush(p)
            room -= n
        self.pubs.append(self.pubs.pop(0))       # rotate so every publisher gets its turn

    def poll(self, timeout):
        now_ns = time.perf_counter_ns()
        conns = self.conns
        for fd, ev in self.ep.poll(timeout):
            conn = conns[fd]
            if ev & select.EPOLLOUT:
                self._flush(conn)
            if ev & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                if not conn.read():
                    raise ProtocolFailure("broker closed a connection")
                conn.consume(now_ns)
                if conn.out and not conn.writable_wanted and not conn.flush():
                    self._want_write(conn, True)

    def checkpoint(self):
        return (time.perf_counter(), self.sent(), self.received(), time.process_time(), self.sampler.cpu())

    def run(self):
        a = self.args
        t0 = time.perf_counter()
        t_measure = t0 + a.warmup
        t_stop = t_measure + a.duration
        start = None
        last_progress, last_progress_t = -1, t0
        period = 1.0 / a.rate if a.mode == "latency" else 0
        next_send = t0
        while True:
            now = time.perf_counter()
            if start is None and now >= t_measure:
                start = self.checkpoint()
                for s in self.subs:
                    s.samples.clear()
                    if s.latencies is not None:
                        s.latencies.clear()
            if now >= t_stop:
                break
            if a.mode == "latency":
                # epoll waits in whole milliseconds: send when less than 1 ms is left, so the
                # average rate is exact and each send is at most 1 ms early (stamped when sent).
                if next_send - now < 0.001:
                    p = self.pubs[0]
                    p.publish(1, time.perf_counter_ns())
                    self._flush(p)
                    next_send = max(next_send + period, now - 0.1)   # never burst after a stall
                timeout = max(0.0, int((min(next_send, t_stop) - time.perf_counter()) * 1000) / 1000)
            else:
                self.refill(time.perf_counter_ns())
                timeout = 0.01
                progress = min(s.progress for s in self.subs)
                if progress != last_progress:
                    last_progress, last_progress_t = progress, now
                elif now - last_progress_t > 2 and self.outstanding() > 0:
                    self._write_off()                # a lossy broker would otherwise stall us
                    last_progress_t = now
            self.poll(timeout)
        stop = self.checkpoint()
        drained = self.drain()
        return start, stop, drained

    def _write_off(self):
        self.resets += 1
        total = self.sent()
        for s in self.subs:
            s.written_off += total - s.progress

    def drain(self):
        """After the last publish: wait for every delivery and PUBACK, up to --drain seconds."""
        deadline = time.perf_counter() + self.args.drain
        while time.perf_counter() < deadline:
            total = self.sent()
            delivered = all(s.progress >= total for s in self.subs)
            if delivered and (not self.args.qos or all(p.acked >= p.sent and not s.out
                                                       for p in self.pubs for s in self.subs)):
                return True
            self.poll(0.05)
        return False

    def close(self):
        for conn in self.conns.values():
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(1)
                conn.sock.sendall(wire.DISCONNECT)
            except OSError:
                pass
            conn.sock.close()
        self.ep.close()

    def summary(self, start, stop, drained):
        a = self.args
        (t1, sent1, recv1, cpu1, s1), (t2, sent2, recv2, cpu2, s2) = start, stop
        elapsed = t2 - t1
        total = self.sent()
        lost = 0
        for s in self.subs:
            # written-off messages are still missing from next_seq unless they came after all
            lost += s.gap_lost + sum(p.sent - s.next_seq[p.index] for p in self.pubs)
        lat = sorted(x for s in self.subs for x in (s.latencies if s.latencies is not None else s.samples))
        res = {
            "sent": total,
            "acked": sum(p.acked for p in self.pubs) if a.qos else None,
            "expected": total * len(self.subs),
            "received": self.received(),
            "lost": lost,
            "dups": sum(s.dups for s in self.subs),
            "gaps": sum(s.gaps for s in self.subs),
            "e2e_resets": self.resets,
            "drained": drained,
            "send_mps": (sent2 - sent1) / elapsed,
            "recv_mps": (recv2 - recv1) / elapsed,
            "lat_samples": len(lat),
            "lat_p50_us": _us(percentile(lat, 0.50)),
            "lat_p99_us": _us(percentile(lat, 0.99)),
            "lat_max_us": _us(lat[-1] if lat else None),
            "lg_cpu": (cpu2 - cpu1) / elapsed,
        }
        res.update(self.sampler.cpu_fractions(s1, s2, elapsed))
        return res


def _us(ns):
    return None if ns is None else round(ns / 1000, 1)


def run_flow(args, sampler):
    flow = Flow(args, sampler)
    try:
        flow.setup()
        res = {"conn_ok": len(flow.conns)}
        start, stop, drained = flow.run()
        res.update(flow.summary(start, stop, drained))
        return res
    finally:
        flow.close()


def run_idle(args, sampler):
    """Open --conns connections (at most --conn-par handshakes at a time), hold, report RSS."""
    ep = select.epoll()
    socks = {}           # fd -> socket
    state = {}           # fd -> "connecting" | "connack" | "up"
    run = f"{os.getpid() % 100000:05d}"
    made = ok = failed = 0
    t0 = time.perf_counter()
    deadline = t0 + args.connect_timeout
    connect_packets = [wire.connect(f"idle-{run}-{i}", args.keepalive) for i in range(args.conns)]
    while ok + failed < args.conns and time.perf_counter() < deadline:
        while made < args.conns and made - ok - failed < args.conn_par:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", args.port))
            if err not in (0, errno.EINPROGRESS):
                s.close()
                failed += 1
            else:
                socks[s.fileno()] = (s, connect_packets[made])
                state[s.fileno()] = "connecting"
                ep.register(s.fileno(), select.EPOLLOUT)
            made += 1
        for fd, ev in ep.poll(0.1):
            s, packet = socks[fd]
            if state[fd] == "connecting":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or ev & (select.EPOLLERR | select.EPOLLHUP):
                    failed += 1
                    _forget(ep, socks, state, fd)
                    continue
                s.send(packet)
                state[fd] = "connack"
                ep.modify(fd, select.EPOLLIN)
            else:
                try:
                    ack = s.recv(4)
                except OSError:
                    ack = b""
                if len(ack) == 4 and ack[0] == 0x20 and ack[3] == 0:
                    ok += 1
                    state[fd] = "up"
                    ep.modify(fd, 0)     # nothing to hear until we disconnect
                else:
                    failed += 1
                    _forget(ep, socks, state, fd)
    t_up = time.perf_counter()
    timed_out = args.conns - ok - failed
    time.sleep(args.duration)
    rss_conn = sampler.rss_kb()
    # DISCONNECT, then let the broker close first so TIME_WAIT stays on its side, not on our ports.
    for fd, (s, _) in socks.items():
        try:
            s.send(wire.DISCONNECT)
        except OSError:
            pass
        ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
    close_deadline = time.perf_counter() + 2
    while socks and time.perf_counter() < close_deadline:
        for fd, _ev in ep.poll(0.1):
            _forget(ep, socks, state, fd)
    for fd in list(socks):
        s, _ = socks[fd]
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        _forget(ep, socks, state, fd)
    ep.close()
    return {
        "idle": args.conns,
        "conn_ok": ok,
        "conn_fail": failed,
        "conn_timeout": timed_out,
        "conn_per_s": ok / (t_up - t0) if t_up > t0 else None,
        "rss_conn_kb": rss_conn,
        "kb_per_conn": (rss_conn - sampler.rss_base) / ok if ok and rss_conn and sampler.rss_base else None,
    }


def _forget(ep, socks, state, fd):
    s, _ = socks.pop(fd)
    state.pop(fd, None)
    try:
        ep.unregister(fd)
    except OSError:
        pass
    s.close()


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=("fanin", "fanout", "latency", "idle"), required=True)
    p.add_argument("--pubs", type=int, default=None, help="publishers (fanin 8, otherwise 1)")
    p.add_argument("--subs", type=int, default=None, help="subscribers (fanout 8, otherwise 1)")
    p.add_argument("--qos", type=int, choices=(0, 1), default=0)
    p.add_argument("--size", type=int, default=64, help="payload bytes")
    p.add_argument("--duration", type=float, default=5, help="measured seconds (idle: hold time)")
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--window", type=int, default=1000, help="end-to-end window: published, not yet received")
    p.add_argument("--inflight", type=int, default=64, help="QoS 1 unacknowledged PUBLISHes per publisher")
    p.add_argument("--rate", type=float, default=1000, help="latency mode: messages per second")
    p.add_argument("--drain", type=float, default=5, help="seconds to wait for the tail after publishing")
    p.add_argument("--conns", type=int, default=1000, help="idle mode: connections")
    p.add_argument("--conn-par", type=int, default=128, help="idle mode: handshakes in flight")
    p.add_argument("--keepalive", type=int, default=60)
    p.add_argument("--connect-timeout", type=float, default=30)
    p.add_argument("--pid", type=int, help="broker PID: sample its CPU and RSS from /proc")
    p.add_argument("--label", default="")
    a = p.parse_args(argv)
    if a.pubs is None:
        a.pubs = 8 if a.mode == "fanin" else 1
    if a.subs is None:
        a.subs = 8 if a.mode == "fanout" else 1
    return a


def main(argv=None):
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sampler = ProcSampler(args.pid)
    res = {"tool": "bench.loadgen", "label": args.label, "mode": args.mode, "qos": args.qos,
           "pubs": args.pubs, "subs": args.subs, "size": args.size, "rss_base_kb": sampler.rss_base}
    try:
        res.update(run_idle(args, sampler) if args.mode == "idle" else run_flow(args, sampler))
        res["ok"] = True
    except (OSError, ProtocolFailure, ValueError) as e:   # ValueError: undecodable bytes
        res.update(ok=False, error=f"{type(e).__name__}: {e}")
    res["rss_end_kb"] = sampler.rss_kb()
    res["hwm_kb"] = sampler.hwm_kb()
    print(json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
