# The sandbox image: language toolchains only. The runner itself is sent in over stdin
# by the service when a container starts, so this image never needs the service's code.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 g++ gcc libc6-dev nodejs openjdk-17-jdk-headless rustc golang-go bash \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /work && chmod 1777 /work
USER 65534:65534
WORKDIR /work
