# syntax=docker/dockerfile:1.7
# Triton for the GPU nodes: the official NVIDIA image serving the whole triton_models/ folder
# (melody_lm and every model added beside it) with the Python backend on Python 3.11, the
# version the `cantus` package and the models' code need.
#
# Triton 24.10 is server 2.51, the release the nvidia-pytriton wheel ships for the embedded
# stack, so the Python-backend stub for 3.11 from that wheel matches this server. The image's
# own stub embeds Python 3.10; ours replaces it, and model.py finds the package through
# CANTUS_PYTHONPATH (the stub ignores PYTHONPATH). Start it with --model-config-name=gpu to
# pick triton_models/*/configs/gpu.pbtxt (KIND_GPU) where a model has one.

FROM nvcr.io/nvidia/tritonserver:24.10-py3 AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       python3.11 python3.11-venv python3.11-dev build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The CUDA build of torch (PyPI's default on Linux x86_64): the models run on the GPU here.
ARG TORCH_INDEX=https://pypi.org/simple
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "torch==2.13.0"
COPY pyproject.toml ./
COPY protos ./protos
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir "grpcio-tools>=1.66,<2" \
    && python -m grpc_tools.protoc -I protos --python_out=shared --pyi_out=shared \
       --grpc_python_out=shared protos/cantus/v1/*.proto \
    && pip install --no-cache-dir .

FROM nvcr.io/nvidia/tritonserver:24.10-py3 AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       python3.11 libpython3.11 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 cantus \
    && useradd --system --uid 10001 --gid cantus --home-dir /tmp --shell /usr/sbin/nologin cantus
COPY --from=build /opt/venv /opt/venv
RUN cp /opt/venv/lib/python3.11/site-packages/pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub \
       /opt/tritonserver/backends/python/triton_python_backend_stub
COPY --chown=root:root triton_models /models
# The stub finds its bundled CUDA runtime (hash-named, so nothing of Triton's is shadowed)
# through a path relative to the wheel, which the copy above leaves behind.
ENV LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia_pytriton.libs:${LD_LIBRARY_PATH}
ENV CANTUS_PYTHONPATH=/opt/venv/lib/python3.11/site-packages \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 8000 8001 8002
ENTRYPOINT ["tritonserver"]
CMD ["--model-repository=/models", "--model-config-name=gpu", \
     "--metrics-config=histogram_latencies=true", "--exit-timeout-secs=30"]
