# TrailSpark Destinations image: `make image` builds it (docker or podman).
# Stage 1 builds the wheel and installs it, with its dependencies, into /opt/venv.
# Stage 2 copies only that venv onto a clean slim base and runs as uid/gid 10001,
# the ids deploy/k8s/base/deployment.yaml sets. Nothing writes to the image at run
# time (bytecode is compiled at build time), so readOnlyRootFilesystem works; the
# pod mounts emptyDirs at /tmp and STATE_DIR.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
COPY service ./service
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --compile /wheels/*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="trailspark-destinations" \
      org.opencontainers.image.description="Delivers TrailSpark lead evaluations from Kafka into CRMs"
RUN groupadd --system --gid 10001 trailspark \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin trailspark
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATE_DIR=/var/lib/trailspark/state
# Owned by root and not writable by the service user: the working directory is read-only.
WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "service"]
