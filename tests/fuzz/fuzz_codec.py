"""A coverage-guided fuzz target for the MQTT codec and the per-connection protocol logic.

`fuzz_one(data)` is the target: the first byte picks the MQTT version, the rest is a
client's byte stream after its CONNECT, fed to `MqttDecoder` in two chunks and every
decoded packet handed to a real `Client` of an in-process `Broker`. The only acceptable
outcomes are packets or an `MqttError`; any other exception is a crash. Decoded packets
must also survive encode -> decode unchanged.

Two drivers: atheris when installed (`pip install atheris`, Python <= 3.11; libFuzzer flags
take an -atheris_ prefix: `python tests/fuzz/fuzz_codec.py -atheris_max_total_time=3600`),
or the built-in one, guided by line coverage of appliance.mqtt and appliance.broker
collected with sys.settrace (no extra dependency; what CI runs):

    python -m tests.fuzz.fuzz_codec --seconds 3600      # a long local run
    FUZZ_SECONDS=20 pytest tests/fuzz                   # the CI budget

Crashing inputs are written to tests/fuzz/crashes/; copy each into tests/fuzz/regressions/
(a file per input), where test_fuzz_codec.py replays it forever after.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

_ATHERIS = __name__ == "__main__" and any(arg.startswith("-atheris") for arg in sys.argv)
if _ATHERIS:  # instrument only our code: instrumenting gevent too takes minutes
    import atheris

    _instrumented = atheris.instrument_imports(include=["appliance"])
else:
    _instrumented = contextlib.nullcontext()

with _instrumented:
    from appliance.broker import Broker
    from appliance.broker.client import Client, ClientSettings
    from appliance.broker.stats import BrokerStats
    from appliance.broker.timers import Timers
    from appliance.config.model import LimitsConfig, MqttConfig
    from appliance.mqtt.codec import MqttDecoder, encode
    from appliance.mqtt.errors import MqttError
    from appliance.mqtt.packets import (
        Auth, Connect, Disconnect, PingReq, PubAck, PubComp, Publish, PubRec, PubRel, Subscribe,
        Subscription, Unsubscribe, Will,
    )

CRASHES = HERE / "crashes"
VERSIONS = (3, 4, 5)


class _Transport:
    """What a Client writes to: bytes are kept, nothing is sent anywhere."""

    def __init__(self) -> None:
        self.written = []
        self.closed = False

    def write(self, data: bytes, tail: bytes | None = None) -> None:
        self.written.append(data if tail is None else data + tail)

    def has_room(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def pause(self) -> None:
        """Nothing else runs here: long work (retained replay) goes straight on."""


def _connect_bytes(version: int) -> bytes:
    return encode(Connect("fuzz", version, will=Will("w/t", b"x", 1), protocol_name="MQIsdp" if version == 3 else "MQTT"),
                  version)


def fuzz_one(data: bytes) -> None:
    """Run one input; raises only for a bug (anything but MqttError, or a broken round trip)."""
    if not data:
        return
    version = VERSIONS[data[0] % 3]
    body = data[1:]
    split = len(body) // 2
    mqtt, limits, stats = MqttConfig(max_packet_size=64 * 1024), LimitsConfig(), BrokerStats()
    broker = Broker(mqtt, limits, stats, Timers())
    client = Client(broker, _Transport(), ClientSettings(mqtt, limits), stats, ("127.0.0.1", 1))
    decoder = MqttDecoder(64 * 1024)
    connect = _connect_bytes(version)
    decoder.feed(connect)
    assert client.receive_data(connect) is None  # no access control: nothing to ask
    for chunk in (body[:split], body[split:]):
        # The client decodes the same bytes itself, as the listener feeds it
        # (appliance/listeners/tcp.py); this decoder checks each packet's round trip.
        failed = False
        try:
            packets = decoder.feed(chunk)
        except MqttError as error:
            packets, failed = error.packets, True
        for packet in packets:
            _check_round_trip(packet, version)
        client.receive_data(chunk)
        if failed or client.closed:
            break
    client.connection_lost("tcp_closed")


def _check_round_trip(packet, version: int) -> None:
    again = MqttDecoder(1 << 28, protocol_version=version).feed(encode(packet, version))
    assert again == [packet], f"round trip changed {packet!r} into {again!r}"


# -- the built-in coverage-guided driver ----------------------------------------------------

def seeds() -> list[bytes]:
    """One valid stream per version with every packet type a client may send."""
    out = []
    for index, version in enumerate(VERSIONS):
        props = {"user_property": [("k", "v")], "message_expiry_interval": 5} if version == 5 else {}
        packets = [
            Subscribe(1, [Subscription("a/+", 1), Subscription("$share/g/b/#", 2)],
                      {"subscription_identifier": [3]} if version == 5 else {}),
            Publish("a/b", b"hello", 1, True, False, 2, props),
            Publish("a/c", b"x", 2, False, False, 3),
            PubRel(3), PubAck(1), PubRec(2), PubComp(2),
            Unsubscribe(4, ["a/+"]), PingReq(), Publish("a/b", b"", 0, True),
        ]
        if version == 5:
            packets += [Publish("", b"alias", 0, False, False, None, {"topic_alias": 1}), Auth(0)]
        packets.append(Disconnect(4 if version == 5 else 0))
        out.append(bytes([index]) + b"".join(encode(p, version) for p in packets))
    return out


def mutate(data: bytes, corpus: list[bytes], rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if choice == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1 and buf:
            buf[min(pos, len(buf) - 1)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif choice == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice == 3 and buf:
            del buf[pos:pos + rng.randint(1, 8)]
        elif choice == 4:
            other = rng.choice(corpus)
            start = rng.randrange(len(other) + 1)
            buf[pos:pos] = other[start:start + rng.randint(1, 32)]
        elif choice == 5 and len(buf) > 2:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start:start + rng.randint(1, 16)]  # duplicate a run: repeated properties
        else:
            buf = buf[:pos]
    return bytes(buf[:4096])


def _traced(data: bytes, prefixes: tuple[str, ...]) -> tuple[set, BaseException | None]:
    lines: set = set()

    def local(frame, event, arg):
        if event == "line":
            lines.add((frame.f_code.co_filename, frame.f_lineno))
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(prefixes) else None

    sys.settrace(global_)
    try:
        fuzz_one(data)
        error = None
    except BaseException as exc:  # noqa: BLE001 - every escape is a finding
        error = exc
    finally:
        sys.settrace(None)
    return lines, error


def run(seconds: float, seed: int | None = None, crashes: Path = CRASHES) -> dict:
    """Fuzz for `seconds`; returns {"runs", "corpus", "lines", "crashes": [(input, traceback)]}."""
    rng = random.Random(seed)
    root = str(HERE.parent.parent / "appliance")
    prefixes = (os.path.join(root, "mqtt"), os.path.join(root, "broker"))
    corpus = seeds()
    covered: set = set()
    found = []
    for data in corpus:
        lines, error = _traced(data, prefixes)
        assert error is None, f"a seed fails: {error!r}"
        covered |= lines
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        data = mutate(rng.choice(corpus), corpus, rng)
        lines, error = _traced(data, prefixes)
        runs += 1
        if error is not None:
            found.append((data, "".join(traceback.format_exception(error))))
            crashes.mkdir(exist_ok=True)
            (crashes / f"crash-{abs(hash(data)):x}.bin").write_bytes(data)
            continue
        if not lines <= covered:
            covered |= lines
            corpus.append(data)
    return {"runs": runs, "corpus": len(corpus), "lines": len(covered), "crashes": found}


if __name__ == "__main__":
    if _ATHERIS:
        atheris.Setup([a.replace("-atheris_", "-") for a in sys.argv], fuzz_one)
        atheris.Fuzz()
    else:
        import argparse

        parser = argparse.ArgumentParser(description="coverage-guided fuzzing of the MQTT codec")
        parser.add_argument("--seconds", type=float, default=60.0)
        parser.add_argument("--seed", type=int, default=None)
        result = run(parser.parse_args().seconds, parser.parse_args().seed)
        print(f"{result['runs']} runs, corpus {result['corpus']}, {result['lines']} lines covered, "
              f"{len(result['crashes'])} crashes (in {CRASHES})")
        for data, trace in result["crashes"][:5]:
            print(data.hex(), trace, sep="\n")
        sys.exit(1 if result["crashes"] else 0)
