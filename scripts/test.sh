#!/usr/bin/env bash
# Install everything the tests need and run them: Debian packages (as root, or with sudo),
# a venv with the pinned Python dependencies, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
# promtool and prometheus: the metrics tests lint /metrics and run a real scrape.
# mosquitto (and mosquitto_passwd): the bridge tests' upstream; the tests start their own.
has_mosquitto() { command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; }
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null || ! has_mosquitto; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        prometheus python3-venv mosquitto >/dev/null
fi
# chromium: the WebSocket test runs MQTT.js in a real headless browser.
if ! command -v chromium >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# MQTT.js (npm mqtt), pinned, for that page; into build/ (gitignored), never from a CDN.
if ! command -v npm >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
MQTT_JS_VERSION=5.16.0
if [ "$(node -p "require('./build/browser/node_modules/mqtt/package.json').version" 2>/dev/null)" != "$MQTT_JS_VERSION" ]; then
    mkdir -p build/browser
    npm install --prefix build/browser --no-audit --no-fund --silent "mqtt@$MQTT_JS_VERSION" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
exec .venv/bin/python -m pytest "$@"
