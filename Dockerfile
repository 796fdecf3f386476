# syntax=docker/dockerfile:1
# One image for every FlowForge process: the layer services (`flowforge serve bronze|silver|gold`),
# the served Prefect deployment (`flowforge serve deployment`), the executions API and the
# Prefect server (`prefect server start`, same Prefect version as the flow's client).

# -- build: a virtualenv with FlowForge and its dependencies (wheels only) ------------------
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
RUN python -m venv /opt/venv
# Dependencies first (from an empty package), so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p flowforge services orchestrator \
    && touch flowforge/__init__.py services/__init__.py orchestrator/__init__.py \
    && /opt/venv/bin/pip install .
COPY flowforge ./flowforge
COPY services ./services
COPY orchestrator ./orchestrator
COPY examples ./examples
COPY prefect.yaml ./
# Editable: the code stays in /app, next to examples/ (the sample workflow `flowforge seed`
# reads) and prefect.yaml; the final stage copies /app and /opt/venv to the same paths.
# Then the installer leaves the venv: the final stage gets no pip, setuptools or wheel
# (grpcio-tools, protoc, is in the dev extra only, so it is not installed at all).
RUN /opt/venv/bin/pip install --no-deps --force-reinstall -e . \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools wheel

# -- runtime: no compiler, no installer, not root -----------------------------------------
FROM python:3.11.14-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="flowforge" \
      org.opencontainers.image.description="FlowForge: a medallion pipeline for CSV data" \
      org.opencontainers.image.licenses="Apache-2.0"

# The base image's own installer goes too (pip, setuptools, wheel and ensurepip's wheels).
RUN python -m pip uninstall --yes pip setuptools wheel \
    && rm -rf /usr/local/lib/python3.11/ensurepip \
    && groupadd --system --gid 10001 flowforge \
    && useradd --system --uid 10001 --gid flowforge --home-dir /home/flowforge \
       --create-home --shell /usr/sbin/nologin flowforge \
    && mkdir -p /var/lib/flowforge \
    && chown flowforge:flowforge /var/lib/flowforge

COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=flowforge:flowforge /app /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLOWFORGE_STATE_DIR=/var/lib/flowforge \
    FLOWFORGE_GRPC_HOST=0.0.0.0 \
    FLOWFORGE_WORKDIR=/app \
    PREFECT_HOME=/home/flowforge/.prefect

# The code, examples/ and prefect.yaml; prefect.yaml's pull step goes to FLOWFORGE_WORKDIR.
WORKDIR /app
USER 10001:10001
EXPOSE 50051 50052 50053 8000 4200

# Each compose service names its whole command (flowforge ... or prefect server start).
CMD ["flowforge", "--help"]
