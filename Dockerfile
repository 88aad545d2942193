# The one image every role runs from: `typogram rest|gateway|worker GROUP|migrate`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# mariadb-dump / mariadb and redis-cli for `typogram backup` and `typogram restore`.
RUN apt-get update && apt-get install -y --no-install-recommends mariadb-client redis-tools \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY typogram ./typogram
COPY gateway ./gateway
COPY rooms ./rooms
COPY tournaments ./tournaments
COPY matchmaking ./matchmaking
COPY rest ./rest
COPY workers ./workers
COPY roles ./roles
COPY bench ./bench
COPY configs ./configs
COPY web ./web
RUN pip install --no-cache-dir -e . && useradd --system --home /app typogram
USER typogram
EXPOSE 8000 8765
CMD ["typogram", "--config", "configs/production.toml", "rest"]
