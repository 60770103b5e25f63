"""A spool on a full disk (a real 1 MiB tmpfs): events still flow from memory, deletes of
delivered events are retried until they are written, nothing delivered is sent again (in this
run or after a restart), and the failure is a log line every 10 s at most, no traceback."""

from __future__ import annotations

import json
import subprocess

import pytest
from stage_process import sample


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_spool_disk_loses_nothing_resends_nothing_and_logs_briefly(receiver, start_stage, tiny_disk):
    receiver.stop()
    config = {"pool_size": 4, "retry": {"backoff_min": 0.05, "backoff_max": 0.2},
              "queue": {"max_len": 100000, "spool_dir": str(tiny_disk)}}
    stage = start_stage(receiver.url, **config)
    stage.publish(None, {"topic": "t", "payload": "x" * 500 + "-", "numbered": True, "publisher_id": "p"},
                  count=3000)  # about 1.6 MB of events for a 1 MiB disk
    stage.wait_metrics(lambda m: sample(m, "appliance_store_commit_errors_total", store="webhook") >= 2)
    receiver.start()
    receiver.wait_delivered(3000, timeout=60)
    metrics = stage.wait_metrics(lambda m: sample(m, "appliance_webhook_spool_depth") == 0
                                 and sample(m, "appliance_store_pending_changes", store="webhook") == 0, timeout=30)
    assert not any(value for (name, _), value in metrics.items() if name == "appliance_webhook_events_dropped_total")
    stage.stop(timeout=2)
    payloads = [json.loads(r.body)["payload"] for r in receiver.requests]
    assert len(payloads) == len(set(payloads)) == 3000  # each once

    logs = stage.logs()
    assert "Traceback" not in logs
    failures = [line for line in logs.splitlines() if line.startswith("ERROR appliance.store")]
    assert 1 <= len(failures) <= 2 and "full" in failures[0] and "change(s) waiting" in failures[0]
    assert "writing again" in logs

    again = start_stage(receiver.url, **config)  # a restart sends nothing that was delivered
    again.publish(None, {"topic": "t", "payload": "after", "publisher_id": "p"})
    receiver.wait_delivered(3001)
    again.stop(timeout=2)
    assert len(receiver.requests) == 3001
