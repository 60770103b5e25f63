"""The benchmark's load generator over WebSocket: bench.loadgen's publishers, subscribers,
counting and epoll loop, with RFC 6455 framing between them and the socket.

    python -m bench.ws.loadgen --port 18843 --path /mqtt --mode fanin --qos 1 --duration 5

Prints one JSON line, the same fields as bench.loadgen (plus "transport": "ws"), so the two
compare run for run. What keeps the framing cheap:
- Outgoing: everything a connection has queued when it flushes (a whole PUBLISH batch, or
  all the PUBACKs of one read) goes out as ONE binary frame, masked with the all-zero key:
  RFC 6455 lets the client pick any key and the server unmasks whatever it is (wsproto
  XORs every payload byte either way), so the broker's work is what a browser costs it while
  the client skips a Python XOR pass. (A real client picks a random key so that caching
  proxies cannot be poisoned; there is no proxy on loopback.)
- Incoming: the server's frames are unmasked; a read strips their headers and copies the
  payload into the same read buffer bench.loadgen's strided-slice counting works on.
Setup (upgrade, CONNECT, SUBSCRIBE) is blocking and checked; pings are answered, a Close
frame or a text frame from the broker ends the run as a failure.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import sys

from bench import loadgen, wire
from bench.loadgen import ProtocolFailure
from bench.procstat import ProcSampler

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_ZERO_KEY = b"\x00\x00\x00\x00"


def client_frame(payload, opcode=0x2):
    """One FIN frame from the client, masked with the zero key (payload unchanged)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack(">H", n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack(">Q", n)
    return head + _ZERO_KEY + payload


class WsStream:
    """Mixin for bench.loadgen's Conn classes: `out` and `buf` hold MQTT bytes as before;
    `read` deframes into `buf`, `flush` frames `out`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.raw = bytearray()        # wire bytes received and not yet deframed (a partial header)
        self.wire_out = bytearray()   # frames not yet taken by the socket
        self.frame_left = 0           # payload bytes of the current data frame still to come
        self.close_code = None
        self.frames_in = 0
        self.frames_out = 0

    # -- set-up, blocking -------------------------------------------------------------------

    def upgrade(self, port, path, timeout):
        key = base64.b64encode(os.urandom(16))
        self.sock.settimeout(timeout)
        self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                          b"Sec-WebSocket-Protocol: mqtt\r\n\r\n" % (path.encode(), port, key))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ProtocolFailure("broker closed the connection during the upgrade")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        lines = head.split(b"\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        if b" 101 " not in lines[0] + b" " or headers.get(b"sec-websocket-accept") != accept \
                or headers.get(b"sec-websocket-protocol") != b"mqtt":
            raise ProtocolFailure(f"upgrade refused: {lines[0].decode(errors='replace')}")
        self.raw += rest

    def send_now(self, mqtt_bytes):
        self.sock.sendall(client_frame(mqtt_bytes))

    def expect(self, n):
        """The next n MQTT bytes, blocking."""
        self._deframe()
        while self.end < n:
            if not self.read():
                raise ProtocolFailure("broker closed the connection during set-up")
        data = bytes(self.buf[:n])
        self.compact(n)
        return data

    # -- the run ------------------------------------------------------------------------------

    def read(self):
        room = len(self.buf) - self.end
        if not room:
            raise ProtocolFailure("packet larger than the read buffer")
        try:
            data = self.sock.recv(room)   # payload <= bytes read, so it fits the room
        except BlockingIOError:
            return True
        except ConnectionError:
            return False
        if not data:
            return False
        self.raw += data
        self._deframe()
        if self.wire_out:              # a Pong to send
            self.flush()
        return self.close_code is None

    def _deframe(self):
        raw, buf = self.raw, self.buf
        pos, n = 0, len(raw)
        while pos < n:
            if self.frame_left:
                take = min(self.frame_left, n - pos)
                buf[self.end:self.end + take] = raw[pos:pos + take]
                self.end += take
                pos += take
                self.frame_left -= take
                continue
            if n - pos < 2:
                break
            b0, b1 = raw[pos], raw[pos + 1]
            if b1 & 0x80:
                raise ProtocolFailure("the broker sent a masked frame")
            length, hlen = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, hlen = int.from_bytes(raw[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, hlen = int.from_bytes(raw[pos + 2:pos + 10], "big"), 10
            opcode = b0 & 0x0F
            if opcode in (0x0, 0x2):   # binary, or its continuation
                pos += hlen
                self.frame_left = length
                self.frames_in += 1
                continue
            if n - pos < hlen + length:
                break                  # a control frame is taken whole (at most 125 bytes)
            payload = bytes(raw[pos + hlen:pos + hlen + length])
            pos += hlen + length
            if opcode == 0x9:
                self.wire_out += client_frame(payload, 0xA)
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                break
            elif opcode != 0xA:
                raise ProtocolFailure(f"the broker sent a frame with opcode {opcode:#x}")
        del raw[:pos]

    def flush(self):
        """Frame what `out` holds once the previous frames are sent; True when all is sent.
        `out` stays non-empty while the socket is backed up, as Flow.refill expects."""
        wire_out = self.wire_out
        while True:
            if not wire_out:
                if not self.out:
                    return True
                wire_out += client_frame(self.out)
                self.out.clear()
                self.frames_out += 1
            try:
                sent = self.sock.send(wire_out)
            except BlockingIOError:
                return False
            del wire_out[:sent]


class WsPublisher(WsStream, loadgen.Publisher):
    pass


class WsSubscriber(WsStream, loadgen.Subscriber):
    pass


def open_ws(cls, args, client_id, *ctor_args):
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=args.connect_timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = cls(sock, *ctor_args)
    conn.upgrade(args.port, args.path, args.connect_timeout)
    conn.send_now(wire.connect(client_id, 60))
    ack = conn.expect(4)
    if ack[0] != 0x20 or ack[3] != 0:
        raise ProtocolFailure(f"CONNECT refused: {ack.hex()}")
    return conn


class WsFlow(loadgen.Flow):
    """bench.loadgen's Flow with WebSocket connections."""

    def setup(self):
        a = self.args
        run = f"{os.getpid() % 100000:05d}"
        base = f"bench/{run}"
        filt = f"{base}/p/#" if a.mode == "fanin" else f"{base}/p/000"
        for i in range(a.subs):
            layout = wire.PublishLayout(f"{base}/p/000", a.qos, a.size)
            conn = open_ws(WsSubscriber, a, f"bench-{run}-s{i}", layout, a.pubs, a.mode == "latency")
            conn.send_now(wire.subscribe(1, filt, a.qos))
            ack = conn.expect(5)
            if ack[0] != 0x90 or ack[4] & 0x80:
                raise ProtocolFailure(f"SUBSCRIBE refused: {ack.hex()}")
            conn.sock.setblocking(False)
            self._add(conn)
        self.batch = max(1, min(loadgen.BATCH_MAX, a.window // 4)) if a.mode != "latency" else 1
        for i in range(a.pubs):
            layout = wire.PublishLayout(f"{base}/p/{i:03d}", a.qos, a.size)
            conn = open_ws(WsPublisher, a, f"bench-{run}-p{i}", i, layout, loadgen.BATCH_MAX)
            conn.sock.setblocking(False)
            self._add(conn)

    def summary(self, start, stop, drained):
        res = super().summary(start, stop, drained)
        conns = list(self.conns.values())
        res.update(transport="ws", frames_in=sum(c.frames_in for c in conns),
                   frames_out=sum(c.frames_out for c in conns),
                   closed_by_broker=[c.close_code for c in conns if c.close_code is not None])
        return res

    def close(self):
        for conn in self.conns.values():
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(1)
                conn.sock.sendall(conn.wire_out + client_frame(wire.DISCONNECT)
                                  + client_frame(struct.pack(">H", 1000), 0x8))
            except OSError:
                pass
            conn.sock.close()
        self.ep.close()


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    path = "/mqtt"
    if "--path" in argv:
        i = argv.index("--path")
        path = argv[i + 1]
        del argv[i:i + 2]
    args = loadgen.parse_args(argv)
    if args.mode == "idle":
        raise SystemExit("python -m bench.ws.loadgen: idle mode is TCP only (bench.loadgen)")
    args.path = path
    return args


def main(argv=None):
    args = parse_args(argv)
    sampler = ProcSampler(args.pid)
    res = {"tool": "bench.ws.loadgen", "label": args.label, "mode": args.mode, "qos": args.qos,
           "pubs": args.pubs, "subs": args.subs, "size": args.size, "rss_base_kb": sampler.rss_base}
    flow = WsFlow(args, sampler)
    try:
        flow.setup()
        res["conn_ok"] = len(flow.conns)
        start, stop, drained = flow.run()
        res.update(flow.summary(start, stop, drained))
        res["ok"] = True
    except (OSError, ProtocolFailure, ValueError) as e:
        res.update(ok=False, error=f"{type(e).__name__}: {e}")
    finally:
        flow.close()
    res["rss_end_kb"] = sampler.rss_kb()
    res["hwm_kb"] = sampler.hwm_kb()
    print(json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
