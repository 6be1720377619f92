# The humidity worker (also used for the simulator). Built by docker compose.

# The pure core compiled with mypyc (scripts/compile_core.py); gcc is in this image only.
FROM python:3.11 AS core
WORKDIR /app
COPY requirements.txt requirements-build.txt ./
RUN pip install --no-cache-dir -r requirements.txt -r requirements-build.txt
COPY scripts/compile_core.py ./scripts/
COPY humidity ./humidity
RUN python scripts/compile_core.py

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUMIDITY_DATA_DIR=/data \
    HUMIDITY_WEB_BIND=0.0.0.0 \
    HUMIDITY_WEB_PORT=6066

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app.py ./
COPY --from=core /app/humidity ./humidity
COPY --from=core /app/humidity_core__mypyc.*.so ./
COPY tables ./tables

RUN useradd --system --uid 10001 --home-dir /app humidity \
    && mkdir -p /data && chown humidity /data
USER humidity
VOLUME ["/data"]
EXPOSE 6066

# /health: 200 while the worker consumes and summaries are fresh.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('HUMIDITY_WEB_PORT', '6066'), timeout=2)"

CMD ["faust", "-A", "app", "worker", "-l", "info"]
