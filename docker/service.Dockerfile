# The service image: API and workers (and a Redis server, for hosts with no registry).
# Build context: the repository root. Workers reach the host's Docker engine through
# its socket and start sandbox containers from the sandbox image beside themselves.
# It holds the service's code and dependencies only: no trainer code, no torch.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv redis-server ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# Wheels of the service's dependencies come from build/wheels (docker/build.sh fills it on
# the host from pyproject's [project] dependencies), so the build needs no index and no
# network: it works behind proxies and on air-gapped hosts.
RUN python3 -m venv /opt/rlef
COPY build/wheels /wheels
RUN /opt/rlef/bin/pip install --no-cache-dir -q --no-index --find-links /wheels \
      -r /wheels/requirements.txt \
 && rm -rf /wheels
COPY service /opt/rlef/app/service
RUN printf '#!/bin/sh\nexec /opt/rlef/bin/python -m service.cli "$@"\n' \
      >/opt/rlef/bin/rlef-service \
 && chmod 755 /opt/rlef/bin/rlef-service
ENV PATH=/opt/rlef/bin:$PATH PYTHONPATH=/opt/rlef/app PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["rlef-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
