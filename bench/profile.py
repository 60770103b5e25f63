"""Profile the appliance under one benchmark scenario: py-spy samples, summed per function.

    python -m bench.profile fanin_q0                 # py-spy (installed into /tmp/bench-pyspy)
    python -m bench.profile fanin_q1 --cprofile      # cProfile of the broker instead
    python -m bench.profile idle --seconds 5         # no load: what the broker does when idle

Writes PROFILE_DIR/<scenario>.txt (top functions by own and by inclusive time, per message
when there was traffic), the raw collapsed stacks (flame-graph input) or the .pstats file.
py-spy samples from outside the process, so the broker runs at full speed; cProfile slows
every Python call and, with gevent, charges a greenlet's wait to whoever switched away.
"""
import argparse
import collections
import re
import json
import pstats
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import brokers
from bench.scenarios import all_scenarios

PYSPY_VENV = Path("/tmp/bench-pyspy")
PYSPY = PYSPY_VENV / "bin" / "py-spy"


def ensure_pyspy():
    """py-spy lives in a scratch venv: it is a tool for us, not a dependency of the appliance."""
    if not PYSPY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYSPY_VENV)], check=True)
        subprocess.run([str(PYSPY_VENV / "bin" / "pip"), "install", "-q", "py-spy"], check=True)
    return str(PYSPY)


def summarize_collapsed(path, messages, top=25):
    """Own and inclusive sample counts per function (and own per line) from py-spy's raw output."""
    own, incl, own_line = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        lines_ = [f for f in stack.split(";") if f]
        frames = [re.sub(r":\d+\)$", ")", f) for f in lines_]
        total += n
        for f in set(frames):
            incl[f] += n
        if frames:
            own[frames[-1]] += n
            own_line[lines_[-1]] += n
    lines = [f"{total} samples" + (f", {messages:,} messages" if messages else "")]
    for title, counter in (("own time, per function", own), ("inclusive time, per function", incl),
                           ("own time, per line", own_line)):
        lines += ["", f"## top by {title}", f"{'share':>7}  function"]
        for frame, n in counter.most_common(top):
            lines.append(f"{100 * n / total:6.1f}%  {frame}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    names = [s.name for s in all_scenarios()] + ["idle"]
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    p.add_argument("scenario", choices=names)
    p.add_argument("--cprofile", action="store_true", help="cProfile inside the broker instead of py-spy")
    p.add_argument("--seconds", type=float, default=8, help="load (and sampling) time")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--port", type=int, default=18847)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench-profile"))
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)

    broker = brokers.appliance(a.port, 0, a.out, a.python)
    pstats_path = a.out / f"{a.scenario}.pstats"
    if a.cprofile:
        broker.argv = [a.python, "-m", "cProfile", "-o", str(pstats_path)] + broker.argv[1:]
    raw = a.out / f"{a.scenario}.collapsed"
    broker.start()
    spy = None
    try:
        if not a.cprofile:
            spy = subprocess.Popen([ensure_pyspy(), "record", "--pid", str(broker.pid), "--rate", str(a.rate),
                                    "--format", "raw", "--output", str(raw), "--nonblocking",
                                    "--duration", str(int(a.seconds + 2))],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        result = {}
        if a.scenario == "idle":
            time.sleep(a.seconds)
        else:
            scenario = next(s for s in all_scenarios(duration=a.seconds) if s.name == a.scenario)
            out = subprocess.run(["taskset", "-c", "1", sys.executable, "-m", "bench.loadgen", "--port",
                                  str(a.port), "--pid", str(broker.pid), *scenario.loadgen_args],
                                 capture_output=True, text=True, timeout=300).stdout
            result = json.loads(out.strip().splitlines()[-1])
        if spy:
            spy.send_signal(signal.SIGINT)       # py-spy writes what it has on SIGINT
            spy.wait(30)
    finally:
        if a.cprofile and broker.proc.poll() is None:
            broker.proc.send_signal(signal.SIGINT)   # cProfile writes its file on a clean exit
            try:
                broker.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        broker.stop()
    messages = result.get("received", 0)
    mps, cpu = result.get("recv_mps") or 0, result.get("broker_cpu") or 0
    head = (f"# profile of the appliance, scenario {a.scenario}\n"
            f"load: {mps:,.0f} msg/s delivered, broker CPU {cpu:.2f} core"
            + (f" = {1e6 * cpu / mps:.1f} us of broker CPU per delivered message" if mps else "")
            + f", lost {result.get('lost')}\n")
    if a.cprofile:
        if not pstats_path.exists():
            sys.exit(f"no cProfile output: the broker did not exit cleanly on SIGINT (see {broker.log_path})")
        text_path = a.out / f"{a.scenario}-cprofile.txt"
        with open(text_path, "w") as f:
            f.write(head)
            pstats.Stats(str(pstats_path), stream=f).sort_stats("tottime").print_stats(40)
    else:
        text_path = a.out / f"{a.scenario}.txt"
        text_path.write_text(head + summarize_collapsed(raw, messages))
    print(text_path.read_text())
    print(f"written: {text_path}")


if __name__ == "__main__":
    main()
