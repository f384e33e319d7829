# imagebot: the same install as ./imagebot (pip installs the project from pyproject.toml, as ./imagebot run does),
# in two stages: wheels are built in the first, the slim runtime stage installs only those wheels.
# The bot runs as a non-root user, keeps its SQLite database on the /data volume and starts `python -m bot`.
# The Python version is the floor of requires-python in pyproject.toml (tests/unit/test_docker.py checks it).
# The base image is pinned by digest (the multi-platform index of python:3.11-slim) and every dependency by
# version and hash (requirements.lock): docs/operations/security.md says how to refresh both.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# The dependencies exactly as locked: pip refuses any file whose hash is not in requirements.lock. The lock
# also holds the build backend (setuptools), so building the project fetches nothing unpinned either.
COPY requirements.lock ./
RUN pip wheel --require-hashes --wheel-dir /wheels -r requirements.lock \
    && pip install --no-deps --no-index /wheels/setuptools-*.whl \
    && rm /wheels/setuptools-*.whl
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/imagebot.db
# A font with Chinese glyphs for the /quota report chart (bot/imaging/chart.py); Debian's current one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 --user-group imagebot \
    && mkdir -p /data /app \
    && chown 10001:10001 /data /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl \
    && rm -rf /wheels
# The working directory is where the bot looks for a .env file (the settings usually come from the environment).
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
# /healthz when HEALTH_ADDRESS is set, else a read-only check that the database exists and is migrated.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bot", "healthcheck", "--timeout", "8"]
CMD ["python", "-m", "bot"]
