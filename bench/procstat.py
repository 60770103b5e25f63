"""CPU and memory of a process (the broker) and of the host, read from /proc."""
import os

TICK = os.sysconf("SC_CLK_TCK")


def _status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def process_cpu_seconds(pid):
    """CPU seconds pid has run (all its threads), or None if it is gone.

    From schedstat (nanoseconds the scheduler ran it), not utime/stime: those are sampled at
    the 100 Hz tick, and a process woken by the same timer interrupt that ticks is charged a
    whole tick for a few microseconds of work (a 1,000 msg/s run read 150 us per message).
    """
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError):
        return None
    return total / 1e9


def host_busy_seconds():
    """CPU seconds all cores spent not idle since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]          # idle + iowait
    return (sum(values[:8]) - idle) / TICK


def rss_kb(pid):
    return _status_kb(pid, "VmRSS:") if pid else None


class ProcSampler:
    """Samples one PID's RSS and CPU, plus the host's busy time, for before/after differences."""

    def __init__(self, pid):
        self.pid = pid
        self.rss_base = self.rss_kb()

    def rss_kb(self):
        return rss_kb(self.pid)

    def hwm_kb(self):
        return _status_kb(self.pid, "VmHWM:") if self.pid else None

    def cpu(self):
        return (process_cpu_seconds(self.pid) if self.pid else None, host_busy_seconds())

    @staticmethod
    def cpu_fractions(before, after, elapsed):
        """Broker and whole-host CPU between two cpu() samples, in cores."""
        out = {"host_cpu": (after[1] - before[1]) / elapsed}
        if before[0] is not None and after[0] is not None:
            out["broker_cpu"] = (after[0] - before[0]) / elapsed
        return out
