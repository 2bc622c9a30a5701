# syntax=docker/dockerfile:1.7
# Cantus gateway: the gRPC front door (Compose, GetPiece; health on its own port for probes).
# FROM the Cantus base image (base.Dockerfile: the build stage, the virtual env, the
# non-root user); `make images` builds the base first and passes BASE_IMAGE.
ARG BASE_IMAGE=cantus/base:0.1.0
FROM ${BASE_IMAGE}
EXPOSE 50051 50052 9100
ENTRYPOINT ["python", "-m", "services.gateway"]
