# imagebot: the same steps as the README's install, as a non-root user with the database on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/imagebot.db

RUN useradd --create-home --uid 10001 imagebot \
    && mkdir -p /data /app \
    && chown imagebot:imagebot /data /app

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-cache-dir .

USER imagebot
VOLUME ["/data"]
CMD ["python", "-m", "bot"]
