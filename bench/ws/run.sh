#!/bin/sh
# WebSocket vs TCP on the appliance, and aedes (Node.js) over WebSocket as the peer:
#   bench/ws/run.sh                          # 4 scenarios x 3 repeats, a few minutes
#   bench/ws/run.sh --only fanin_q1 --repeat 5
# Installs, when missing: aedes 1.2.0 + aedes-server-factory 0.2.1 (npm, into the gitignored
# build/aedes/), mosquitto-clients (bench.ws.verify's witness).
set -e
cd "$(dirname "$0")/../.."
if [ "$(node -p "require('./build/aedes/node_modules/aedes/package.json').version" 2>/dev/null)" != "1.2.0" ]; then
    mkdir -p build/aedes
    npm install --prefix build/aedes --no-audit --no-fund --silent aedes@1.2.0 aedes-server-factory@0.2.1 >/dev/null
fi
if [ ! -x /usr/bin/mosquitto_sub ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto-clients >/dev/null
fi
command -v taskset >/dev/null 2>&1 || { echo "taskset (util-linux) is required" >&2; exit 1; }
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m bench.ws --peer aedes "$@"
