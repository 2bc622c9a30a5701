# syntax=docker/dockerfile:1.7
# Cantus station: keeps every running station composing ahead of playback and streams it (HLS).
# FROM the Cantus base image (base.Dockerfile: the build stage, the virtual env, the
# non-root user); `make images` builds the base first and passes BASE_IMAGE. Plus ffmpeg from
# Debian: each station's HLS segmenter (cantus.stations.encoding) runs it.
ARG BASE_IMAGE=cantus/base:0.1.0
FROM ${BASE_IMAGE}
USER 0
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "services.station"]
