"""The chart's config watcher (configReload.mode = watch), run from the appliance image.

The kubelet replaces the files of a mounted ConfigMap or Secret in place (about a minute after the
object changed). This sidecar looks at the broker's config, secret and TLS directories every
WATCH_INTERVAL seconds and, when their content changed, asks the broker in the same pod to
re-read them: POST /api/v4/reload on 127.0.0.1, with the http_server credentials of the config it
just read (the same file and NANOMQ_* variables as the broker). Clients stay connected. A request
that fails is tried again at the next look; one line is printed per outcome.
"""

import base64
import hashlib
import os
import signal
import sys
import time
import urllib.error
import urllib.request

from appliance.config import ConfigError, default_config_path, load_config

# The chart's mounts; WATCH_DIRS (colon-separated) replaces them.
WATCHED = tuple(os.environ.get("WATCH_DIRS", "/etc/nanomq:/etc/nanomq-secret:/etc/nanomq-tls").split(":"))


def fingerprint() -> str:
    """A digest of every file in the watched directories (the kubelet's ..data links followed)."""
    digest = hashlib.sha256()
    for directory in WATCHED:
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if name.startswith("..") or not os.path.isfile(path):
                continue
            digest.update(path.encode() + b"\0")
            with open(path, "rb") as file:
                digest.update(hashlib.sha256(file.read()).digest())
    return digest.hexdigest()


def post_reload(http) -> int:
    """POST /api/v4/reload to the broker in this pod with `http`'s credentials; the HTTP status."""
    request = urllib.request.Request(f"http://127.0.0.1:{http.port}/api/v4/reload", data=b"", method="POST")
    if http.auth_type == "basic":
        token = base64.b64encode(f"{http.username}:{http.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def ask_reload(path: str, running):
    """Ask for a reload; returns (done, the http_server settings the broker now runs with).

    The broker still runs with the old credentials when the request arrives, so those are tried
    first, then the new ones (in case it already applied them). done is False when the broker
    could not be reached: the request is repeated at the next look."""
    try:
        new = load_config(path).config.http_server
    except ConfigError as error:
        # The broker keeps its running config for a file it cannot read; ask anyway, so it says why.
        print(f"config-watcher: {error}", flush=True)
        new = None
    candidates = [http for http in (running, new) if http is not None]
    if not candidates:
        print("config-watcher: no HTTP server in the config: cannot ask the broker to reload", flush=True)
        return True, running
    try:
        for http in candidates:
            status = post_reload(http)
            if status != 401:
                break
    except OSError as error:
        print(f"config-watcher: broker not reachable ({error}); trying again", flush=True)
        return False, running
    if 200 <= status < 300:
        print(f"config-watcher: files changed, the broker reloaded them ({status})", flush=True)
        return True, new or running
    if status in (404, 405):  # a broker without the endpoint (405: it serves GET there only)
        print("config-watcher: this broker has no /api/v4/reload; restart the pod to apply the change", flush=True)
    else:
        print(f"config-watcher: the broker refused the reload ({status}); see its log", flush=True)
    return True, running


def main() -> int:
    # As PID 1 of its container, Python would ignore SIGTERM and hold up the pod's deletion.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    interval = float(os.environ.get("WATCH_INTERVAL", "10"))
    path = default_config_path()
    try:
        http = load_config(path).config.http_server
    except ConfigError as error:
        print(f"config-watcher: {error}", flush=True)
        http = None
    seen, pending = fingerprint(), False
    print(f"config-watcher: watching {', '.join(d for d in WATCHED if os.path.isdir(d))} every {interval:g} s",
          flush=True)
    while True:
        time.sleep(interval)
        current = fingerprint()
        if current != seen:
            seen, pending = current, True
        if pending:
            done, http = ask_reload(path, http)
            pending = not done


if __name__ == "__main__":
    sys.exit(main())
