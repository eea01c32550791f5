# syntax=docker/dockerfile:1
# Appease's production image (docs/deploy.md, "Docker"). One image for every process:
# the command is a subcommand of deploy/entrypoint.sh (web, the default; worker, beat,
# migrate, release), as in compose.yaml. No secret is baked in: they come from the
# environment or from files (NAME_FILE) at run time.
ARG PYTHON_VERSION=3.11

# --- builder: the pinned dependencies in a virtualenv ---------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements/base.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

# --- runtime: the virtualenv, the code, the static files; no compiler, not root --------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DEBUG=0 \
    PORT=8000 \
    APPEASE_VAR_DIR=/var/lib/appease \
    STATIC_ROOT=/app/staticfiles \
    APPEASE_METRICS_DIR=/tmp/appease-metrics
RUN groupadd --system --gid 10001 appease \
    && useradd --system --uid 10001 --gid appease --home-dir /var/lib/appease --shell /usr/sbin/nologin appease \
    && mkdir -p /var/lib/appease \
    && chown appease:appease /var/lib/appease
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY . .
# The static files, hashed and compressed, served by the application (WhiteNoise). The
# demo defaults stand in for the secrets collectstatic does not use.
RUN DEBUG=1 STATIC_MANIFEST=1 python manage.py collectstatic --no-input --verbosity 0
USER appease
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "deploy/healthcheck.py", "web"]
ENTRYPOINT ["deploy/entrypoint.sh"]
CMD ["web"]
