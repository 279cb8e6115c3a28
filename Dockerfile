# consent_api: slim image, non-root user, the same install and entry point as CI and README.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CONSENT_DATABASE_URL=sqlite:////data/consent.db CONSENT_HOST=0.0.0.0 CONSENT_PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY consent_api ./consent_api
RUN pip install . && useradd --system --uid 10001 --home /app consent \
    && mkdir -p /data && chown consent /data

USER consent
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"
# SIGTERM: granian finishes the requests in flight, then each worker closes its store.
STOPSIGNAL SIGTERM
CMD ["consent-api", "serve"]
