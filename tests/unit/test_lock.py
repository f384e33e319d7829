"""requirements.lock (what the Docker image installs, by version and hash) agrees with pyproject.toml.

Regenerate it after changing the dependencies (docs/development/dependencies.md)::

    pip-compile --generate-hashes --strip-extras --allow-unsafe --all-build-deps --no-emit-index-url \\
        --no-emit-find-links --output-file requirements.lock pyproject.toml
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = (ROOT / "requirements.lock").read_text(encoding="utf-8")


def pins() -> dict[str, tuple[Version, list[str], list[str]]]:
    """name -> (version, hashes, the packages it is there for)."""
    out: dict[str, tuple[Version, list[str], list[str]]] = {}
    for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n((?:    .*\n?)*)", LOCK, re.M):
        body = m.group(3)
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", body)
        via = re.findall(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9_.\-]+)", body, re.M)
        out[str(canonicalize_name(m.group(1)))] = (Version(m.group(2)), hashes, via)
    return out


def test_every_dependency_is_pinned_within_its_range_with_hashes() -> None:
    locked = pins()
    wanted = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    wanted += [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    for req in wanted:
        name = str(canonicalize_name(req.name))
        assert name in locked, f"{req.name} is not in requirements.lock: regenerate it"
        version, hashes, _ = locked[name]
        assert req.specifier.contains(version, prereleases=True), f"{name}=={version} is outside {req.specifier}"
    for name, (version, hashes, _) in locked.items():
        assert hashes, f"{name}=={version} has no hash: the image would install it unchecked"


def test_nothing_is_locked_that_no_dependency_needs() -> None:
    locked = pins()
    for name, (_, _, via) in locked.items():
        assert via, f"{name} is pinned for no reason"
        sources = {str(canonicalize_name(v)) for v in via}
        assert "imagebot" in sources or sources & set(locked), f"{name} is there for {via}, none of them locked"


def test_the_floors_are_past_the_known_advisories() -> None:
    floors = {str(canonicalize_name(Requirement(r).name)): Requirement(r) for r in PYPROJECT["project"]["dependencies"]}
    assert not floors["aiohttp"].specifier.contains("3.13.2") and floors["aiohttp"].specifier.contains("3.13.3")
    assert not floors["pillow"].specifier.contains("12.1.0") and floors["pillow"].specifier.contains("12.1.1")


def test_the_image_installs_from_the_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY requirements.lock" in dockerfile
    assert re.search(r"pip wheel --require-hashes --wheel-dir /wheels -r requirements.lock", dockerfile)
    assert "--no-build-isolation" in dockerfile  # the backend comes from the lock, not fetched unpinned
