# syntax=docker/dockerfile:1.7
# Cantus melody: decodes melodies through Triton (melody_lm) and publishes them bar by bar.
# FROM the Cantus base image (base.Dockerfile: the build stage, the virtual env, the
# non-root user); `make images` builds the base first and passes BASE_IMAGE.
ARG BASE_IMAGE=cantus/base:0.1.0
FROM ${BASE_IMAGE}
EXPOSE 8080
ENTRYPOINT ["python", "-m", "services.melody"]
