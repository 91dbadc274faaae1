# syntax=docker/dockerfile:1
# Octavia's container images: two targets (docs/deployment.md).
#
#   docker build --target offline -t octavia:offline .   # Debian slim, CPU torch, --preset offline
#   docker build --target quality -t octavia:quality .   # CUDA runtime, the quality engines
#
# Both run as the non-root user octavia (UID/GID 10001), keep the server's data dir on the
# volume /data and every model cache (HF_HOME, TORCH_HOME, Octavia's own) on the volume
# /models, expose 8000 and check /api/v1/health. ENTRYPOINT is `octavia`; the default command
# serves on every interface, so the data dir needs an API key first:
#   docker run --rm -v octavia-data:/data octavia:offline serve keys create NAME --data-dir /data
#
# Base images are pinned by tag (in the FROM lines, where hadolint and checkov read them); add
# a digest (python:3.11.13-slim-bookworm@sha256:...) where builds must be reproducible byte for
# byte.

# The user the images run as; a fixed UID so that volumes and NFS exports can be owned by it.
ARG OCTAVIA_UID=10001
# torch 2.8.0 is what the quality extra pins (whisperx); the offline image takes the same
# version's CPU build, so resemblyzer does not pull the CUDA one (~4 GB).
ARG TORCH_VERSION=2.8.0

# The programs Octavia runs (scripts/install-system-deps.sh, less the test-only ones):
# ffmpeg (with Rubber Band), espeak-ng, Apertium's English<->Spanish pair, and a font for
# burnt-in subtitles.

############################################################################################
# offline: build the virtual environment (webrtcvad, under resemblyzer, builds from source)
FROM python:3.11.13-slim-bookworm AS offline-build
ARG TORCH_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# DL3008 (pin apt versions): the packages come from the pinned Debian release, whose
# security updates we want; pinned versions disappear from the mirrors at each point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" \
        --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# DL3013 (pin pip versions): this installs the project itself from its source; the
# versions of its dependencies are pinned or bounded in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[offline,server]"

############################################################################################
# quality: Python 3.11 on the CUDA runtime image (cuDNN 9 for CTranslate2; torch brings its
# own CUDA libraries as wheels)
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04 AS quality-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive
# DL3008: as above (Ubuntu 22.04's own python3.11 and the same programs, with its updates).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv ca-certificates \
        ffmpeg espeak-ng apertium apertium-eng-spa fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

FROM quality-base AS quality-build
# DL3008: as above (compilers for the packages that build from source, in this stage only).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential python3.11-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# torch==2.8.0 and torchaudio==2.8.0 are pinned by the quality extra (PyPI's CUDA 12.8 build).
# DL3013: as above (the project from its source).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[quality,offline,server]"

FROM quality-base AS quality
ARG OCTAVIA_UID
RUN groupadd --system --gid "${OCTAVIA_UID}" octavia \
    && useradd --system --uid "${OCTAVIA_UID}" --gid octavia --create-home \
        --home-dir /home/octavia --shell /usr/sbin/nologin octavia \
    && mkdir -p /data /models \
    && chown octavia:octavia /data /models
COPY --from=quality-build /opt/venv /opt/venv
# The voice library (XDG_DATA_HOME) lives on the data volume, shared by serve and workers.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/models/huggingface \
    TORCH_HOME=/models/torch \
    OCTAVIA_MODELS_CACHE_DIR=/models/octavia \
    XDG_DATA_HOME=/data/home
VOLUME ["/data", "/models"]
WORKDIR /data
USER ${OCTAVIA_UID}:${OCTAVIA_UID}
EXPOSE 8000
# A worker (`octavia worker`) serves no HTTP: compose and the Helm chart turn this off there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"]
ENTRYPOINT ["octavia"]
CMD ["serve", "--host", "0.0.0.0", "--data-dir", "/data"]

############################################################################################
# offline: the runtime image (last, so a plain `docker build .` makes this one)
FROM python:3.11.13-slim-bookworm AS offline
ARG OCTAVIA_UID
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# DL3008: as above.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ffmpeg espeak-ng apertium apertium-eng-spa fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "${OCTAVIA_UID}" octavia \
    && useradd --system --uid "${OCTAVIA_UID}" --gid octavia --create-home \
        --home-dir /home/octavia --shell /usr/sbin/nologin octavia \
    && mkdir -p /data /models \
    && chown octavia:octavia /data /models
COPY --from=offline-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/models/huggingface \
    TORCH_HOME=/models/torch \
    OCTAVIA_MODELS_CACHE_DIR=/models/octavia \
    XDG_DATA_HOME=/data/home
VOLUME ["/data", "/models"]
WORKDIR /data
USER ${OCTAVIA_UID}:${OCTAVIA_UID}
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"]
ENTRYPOINT ["octavia"]
CMD ["serve", "--host", "0.0.0.0", "--data-dir", "/data"]
