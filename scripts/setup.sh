#!/usr/bin/env bash
# Bring up everything the tests need, doing only what is missing (run it as often as you like):
# system packages, gVisor (runsc) registered with dockerd, the Docker engine, Redis on
# 127.0.0.1:6379, the venv (.venv), and the images (rebuilt when their sources change).
# `make test` and `.ci/run` both start with it. On Debian 12 as root; nothing is ever stopped.
#   scripts/setup.sh            every step
#   scripts/setup.sh images     only the images step (what `make images` runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(docker.io docker-compose redis-server bubblewrap debootstrap iproute2 make
          python3 python3-venv g++ gcc libc6-dev nodejs default-jdk-headless rustc golang-go
          sqlite3 runsc)
DEMO_PACKAGES=(bubblewrap make python3 python3-venv)
REDIS_PORT=${REDIS_PORT:-6379}
RUNSC_RUNTIME='{"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}'

step() { echo "== $*"; }
as_root() {  # what needs root: say the one command that does it, instead of failing later
    if [ "$(id -u)" != 0 ]; then
        echo "error: $1 needs root: run $0 as root once" >&2
        exit 1
    fi
}

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return
    step "installing ${missing[*]}"
    as_root "installing packages"
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

system_packages() { install_missing "${PACKAGES[@]}"; }
demo_packages() { install_missing "${DEMO_PACKAGES[@]}"; }  # `make demo`: bubblewrap only

register_runsc() {  # the hostile suites also run under gVisor
    grep -q '"runsc"' /etc/docker/daemon.json 2>/dev/null && return
    step "registering runsc with dockerd"
    as_root "registering runsc"
    mkdir -p /etc/docker
    python3 - "$RUNSC_RUNTIME" <<'EOF'
import json, pathlib, sys
path = pathlib.Path("/etc/docker/daemon.json")
config = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
config.setdefault("runtimes", {})["runsc"] = json.loads(sys.argv[1])
path.write_text(json.dumps(config, indent=2) + "\n")
EOF
    if [ -s /var/run/docker.pid ]; then  # a running engine reloads its runtimes
        kill -HUP "$(cat /var/run/docker.pid)" || true
    fi
}

docker_engine() {
    docker info >/dev/null 2>&1 && return
    if [ "$(id -u)" != 0 ] && [ -S /var/run/docker.sock ]; then
        echo "error: cannot reach the Docker engine: is this user in the docker group?" >&2
        exit 1
    fi
    step "starting dockerd (log: /tmp/rlef-dockerd.log)"
    as_root "starting dockerd"
    (setsid dockerd >>/tmp/rlef-dockerd.log 2>&1 &)
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
    echo "error: dockerd did not start; see /tmp/rlef-dockerd.log" >&2
    exit 1
}

start_redis() {  # the tests' Redis (RLEF_TEST_REDIS_URL defaults to it)
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
    step "starting redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' \
        --appendonly no >/dev/null
    for _ in $(seq 30); do
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
        sleep 0.5
    done
    echo "error: redis-server did not start on port $REDIS_PORT" >&2
    exit 1
}

# What the images are built from; a change rebuilds them (the label records it).
images_source() {
    find docker service pyproject.toml -type f ! -path '*__pycache__*' -print0 | sort -z \
        | xargs -0 sha256sum | sha256sum | cut -c1-16
}

images() {
    local want have
    want=$(images_source)
    have=$(docker image inspect -f '{{index .Config.Labels "rlef.source"}}' \
           rlef-service:latest rlef-sandbox:latest 2>/dev/null | sort -u | tr -d '\n' || true)
    [ "$have" = "$want" ] && return
    step "building images (source $want)"
    RLEF_SOURCE="$want" PYTHON=.venv/bin/python bash docker/build.sh
}

venv() { make -s install; }

if [ $# -gt 0 ]; then
    for name in "$@"; do
        case $name in
            system_packages|demo_packages|register_runsc|docker_engine|start_redis|venv|images)
                $name ;;
            *) echo "error: no step $name" >&2; exit 2 ;;
        esac
    done
    exit 0
fi
system_packages
register_runsc
docker_engine
start_redis
venv
images
echo "ready: $(docker info --format 'engine {{.ServerVersion}}, runtimes {{range $k, $v := .Runtimes}}{{$k}} {{end}}'); redis $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping); $(.venv/bin/python --version)"
