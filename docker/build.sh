#!/usr/bin/env bash
# Build rlef's images with no registry pull.
#   BASE_IMAGE  base for every image (default rlef-base:bookworm, made here by debootstrap
#               when missing; elsewhere set BASE_IMAGE=debian:bookworm-slim)
#   SANDBOX_IMAGE / SERVICE_IMAGE  names of the images built
#   PYTHON      a Python 3.11+ with pip, to fetch the service's wheels (default python3)
#   RLEF_SOURCE recorded as the images' rlef.source label (scripts/setup.sh: a source hash)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=${BASE_IMAGE:-rlef-base:bookworm}
SANDBOX_IMAGE=${SANDBOX_IMAGE:-rlef-sandbox:latest}
SERVICE_IMAGE=${SERVICE_IMAGE:-rlef-service:latest}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-python3}

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if [ "$BASE_IMAGE" != "rlef-base:bookworm" ]; then
        docker pull "$BASE_IMAGE"
    else
        echo "building $BASE_IMAGE with debootstrap from $MIRROR"
        root=$(mktemp -d)
        trap 'rm -rf "$root"' EXIT
        debootstrap --variant=minbase --include=python3 bookworm "$root" "$MIRROR" >/dev/null
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" -c . | docker import - "$BASE_IMAGE"
    fi
fi

LABEL="rlef.source=${RLEF_SOURCE:-}"
docker build -q -f docker/sandbox.Dockerfile --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --label "$LABEL" -t "$SANDBOX_IMAGE" docker/
if [ "${SKIP_SERVICE_IMAGE:-0}" != 1 ] && [ -f docker/service.Dockerfile ]; then
    rm -rf build/wheels && mkdir -p build/wheels
    # The service's dependencies only (the rlef wheel would carry the trainer).
    # async-timeout: redis needs it on the image's Python 3.11.2, not on newer ones
    "$PYTHON" -c 'import tomllib; print("\n".join(
        tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        >build/wheels/requirements.txt
    echo "async-timeout>=4.0.3" >>build/wheels/requirements.txt
    "$PYTHON" -m pip wheel -q -w build/wheels -r build/wheels/requirements.txt >/dev/null
    docker build -q -f docker/service.Dockerfile --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --label "$LABEL" -t "$SERVICE_IMAGE" .
fi
echo "images ready: $SANDBOX_IMAGE $SERVICE_IMAGE"
