# One image for the ingest, api and dashboard services (and the one-shot init job).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# pg_dump/pg_restore for `pisman backup` / `pisman restore` (major 15, the database's).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY pisman ./pisman
COPY ingest ./ingest
COPY api ./api
COPY dashboard ./dashboard
COPY simulators ./simulators
COPY sql ./sql
COPY data ./data
RUN pip install -e . && useradd --system --uid 10001 pisman && mkdir -p /app/var && chown pisman /app/var
USER pisman
EXPOSE 8000 8050 9108
ENTRYPOINT ["pisman"]
CMD ["--help"]
