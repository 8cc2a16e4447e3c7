#!/usr/bin/env bash
# Build rlef's images with no registry pull.
#   BASE_IMAGE  base for every image (default rlef-base:bookworm, made here by debootstrap
#               when missing; elsewhere set BASE_IMAGE=debian:bookworm-slim)
#   SANDBOX_IMAGE / SERVICE_IMAGE  names of the images built
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=${BASE_IMAGE:-rlef-base:bookworm}
SANDBOX_IMAGE=${SANDBOX_IMAGE:-rlef-sandbox:latest}
SERVICE_IMAGE=${SERVICE_IMAGE:-rlef-service:latest}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

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

docker build -q -f docker/sandbox.Dockerfile --build-arg BASE_IMAGE="$BASE_IMAGE" \
    -t "$SANDBOX_IMAGE" docker/
if [ "${SKIP_SERVICE_IMAGE:-0}" != 1 ] && [ -f docker/service.Dockerfile ]; then
    rm -rf build/wheels
    # async-timeout: redis needs it on the image's Python 3.11.2, not on newer ones
    python3 -m pip wheel -q -w build/wheels . "async-timeout>=4.0.3" >/dev/null
    docker build -q -f docker/service.Dockerfile --build-arg BASE_IMAGE="$BASE_IMAGE" \
        -t "$SERVICE_IMAGE" .
fi
echo "images ready: $SANDBOX_IMAGE $SERVICE_IMAGE"
