# syntax=docker/dockerfile:1.7
# The Python base of every Cantus service image (gateway.Dockerfile, melody.Dockerfile, …):
# the `cantus` package and `services` installed into /opt/venv, a non-root user, and writable
# places only under /var/lib/cantus and /tmp (mounted as volumes in the cluster, so the root
# filesystem can be read-only). Built by `make images` from the repository root.
#
# Stage `build` has pip and the gRPC code generator; `runtime` only the virtual env.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# g++: pyworld (the sung vocals' vocoder) is built from its sdist; only this stage needs it.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The services never run a model themselves (Triton does), so the CPU build of torch is
# enough here and keeps the image about 1.5 GB smaller than the CUDA one.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "torch==2.13.0"
COPY pyproject.toml ./
COPY protos ./protos
COPY shared ./shared
COPY services ./services
# Generated protobuf code is not committed (`make protos`): generate it, then install
# the package (not editable) so the image holds no source tree. boto3: the S3 piece store.
RUN pip install --no-cache-dir "grpcio-tools>=1.66,<2" \
    && python -m grpc_tools.protoc -I protos --python_out=shared --pyi_out=shared \
       --grpc_python_out=shared protos/cantus/v1/*.proto \
    && pip install --no-cache-dir . "boto3>=1.34,<2"

FROM python:3.11.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 cantus \
    && useradd --system --uid 10001 --gid cantus --home-dir /var/lib/cantus \
       --shell /usr/sbin/nologin cantus \
    && install -d -o cantus -g cantus /var/lib/cantus /var/lib/cantus/state /var/lib/cantus/pieces
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/cantus \
    CANTUS_HOST=0.0.0.0 \
    CANTUS_STATE_DIR=/var/lib/cantus/state \
    CANTUS_DATA_DIR=/var/lib/cantus/pieces
WORKDIR /var/lib/cantus
USER 10001:10001
