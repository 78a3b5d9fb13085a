"""The manifest's requirements install on every Home Assistant release we promise.

Home Assistant installs an integration's requirements under its own constraints
(`homeassistant/package_constraints.txt` in its wheel). If they cannot be met,
the integration never loads. For each release in RELEASES this module takes
that file out of the release's wheel (no install) and asks pip's resolver
whether the manifest's requirements install under it, for the platforms Home
Assistant runs on: the container image and Home Assistant OS (Alpine, musl) and
a Python virtual environment on a glibc Linux, each on x86_64 and aarch64.

Updating the releases (they are constants, so a run is deterministic):
- FLOOR: the oldest release we promise; it must agree with hacs.json, the
  blueprints' `min_version` and requirements_test_floor.txt (tests in
  test_metadata.py check that).
- NEWEST_TESTED: the release requirements_test.txt's
  pytest-homeassistant-custom-component pins.
- NEWEST: the newest release on the registry; list it with
  `pip index versions homeassistant --python-version 3.14.9 --only-binary=:all:`
  (without those options pip hides releases the running Python cannot install).
- python: the release's REQUIRED_PYTHON_VER (`homeassistant/const.py`); the test
  checks it against the wheel's Requires-Python.

The registry is needed once: each wheel is downloaded into
`${RTSP_ANNOUNCER_CACHE:-~/.cache/rtsp-announcer}/wheels` and kept, and each
resolver verdict that succeeded is kept there too, keyed by the release, the
platform and a sha256 of the manifest's requirements; a failed resolution is
asked again on the next run. Run with `-s` to see what resolved.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parent.parent
MANIFEST = ROOT / "custom_components" / "rtsp_announcer" / "manifest.json"


@dataclass(frozen=True)
class Release:
    """A Home Assistant release and the Python version it requires."""

    version: str
    python: str


FLOOR = Release("2025.4.4", "3.13.0")
NEWEST_TESTED = Release("2026.10.4", "3.14.2")
NEWEST = Release("2026.11.0", "3.14.2")
RELEASES = (FLOOR, NEWEST_TESTED, NEWEST)

ARCHITECTURES = ("x86_64", "aarch64")
# pip takes `--platform` tags literally (manylinux_2_28 does not imply the older
# manylinux_2_17 that most wheels carry), so every compatible tag is listed.
# glibc 2.28 and musl 1.2 are what current Linux distributions and Alpine have.
PLATFORMS: dict[str, tuple[str, ...]] = {}
for _arch in ARCHITECTURES:
    PLATFORMS[f"musl-{_arch}"] = tuple(
        f"musllinux_1_{minor}_{_arch}" for minor in (2, 1, 0)
    )
    PLATFORMS[f"glibc-{_arch}"] = (
        *(f"manylinux_2_{minor}_{_arch}" for minor in range(28, 4, -1)),
        *(f"manylinux{legacy}_{_arch}" for legacy in ("2014", "2010", "1")),
    )

PIP_TIMEOUT = 300  # seconds, for one pip command
WORKERS = 4


def cache_dir() -> Path:
    base = os.environ.get("RTSP_ANNOUNCER_CACHE") or Path.home() / ".cache" / (
        "rtsp-announcer"
    )
    path = Path(base) / "wheels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def manifest_requirements() -> list[str]:
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    requirements = data["requirements"]
    assert isinstance(requirements, list)
    return [str(requirement) for requirement in requirements]


def requirements_digest() -> str:
    text = json.dumps(manifest_requirements())
    return hashlib.sha256(text.encode()).hexdigest()


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the test environment's pip (a child process: sockets are allowed)."""
    env = os.environ | {
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PIP_PROGRESS_BAR": "off",
    }
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        env=env,
        check=False,
    )


def _pip_errors(result: subprocess.CompletedProcess[str]) -> str:
    """pip's stderr without the notes about absent local indexes."""
    lines = [
        line if len(line) <= 400 else f"{line[:400]} …"
        for line in result.stderr.splitlines()
        if not re.match(r"WARNING: Location '[^']*' is ignored", line)
    ]
    return "\n".join(lines[-15:])


def wheel_path(release: Release) -> Path:
    return cache_dir() / f"homeassistant-{release.version}-py3-none-any.whl"


def ensure_wheel(release: Release) -> Path:
    """The release's wheel from the cache, downloaded first if absent."""
    target = wheel_path(release)
    if target.is_file():
        return target
    # Download next to the cache and move into place: runs may share the cache.
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        result = _pip(
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            release.python,
            f"homeassistant=={release.version}",
            "--dest",
            scratch,
        )
        downloaded = Path(scratch) / target.name
        if result.returncode != 0 or not downloaded.is_file():
            pytest.fail(
                f"Could not download Home Assistant {release.version} "
                f"(Python {release.python}) from the registry, which this test "
                f"needs once (then it is kept in {target.parent}). "
                f"pip said:\n{_pip_errors(result)}",
                pytrace=False,
            )
        downloaded.replace(target)
    return target


def constraints_path(release: Release) -> Path:
    """homeassistant/package_constraints.txt of the release, as a file."""
    target = cache_dir() / f"homeassistant-{release.version}-constraints.txt"
    if target.is_file():
        return target
    wheel = ensure_wheel(release)
    try:
        with zipfile.ZipFile(wheel) as archive:
            text = archive.read("homeassistant/package_constraints.txt").decode()
            metadata = archive.read(
                f"homeassistant-{release.version}.dist-info/METADATA"
            ).decode()
    except (zipfile.BadZipFile, KeyError) as err:
        wheel.unlink(missing_ok=True)
        pytest.fail(f"{wheel} is damaged ({err}); removed it, run again")
    requires = re.search(r"^Requires-Python: (.+)$", metadata, re.MULTILINE)
    assert requires is not None, f"{wheel.name} names no Requires-Python"
    assert requires[1].strip() == f">={release.python}", (
        f"Home Assistant {release.version} requires Python {requires[1].strip()}: "
        "correct its python in RELEASES"
    )
    scratch = target.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(text, encoding="utf-8")
    scratch.replace(target)
    return target


def parse_constraints(text: str, source: str) -> dict[str, SpecifierSet]:
    """Package name → what a package_constraints.txt allows."""
    parsed: dict[str, SpecifierSet] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()  # noqa: PLW2901
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as err:
            pytest.fail(f"{source}: {line!r}: {err}")
        name = canonicalize_name(requirement.name)
        parsed[name] = parsed.get(name, SpecifierSet()) & requirement.specifier
    return parsed


@cache
def constraints(release: Release) -> dict[str, SpecifierSet]:
    """Package name → what the release's constraints allow."""
    text = constraints_path(release).read_text(encoding="utf-8")
    return parse_constraints(text, f"Home Assistant {release.version}")


def pinned(specifiers: SpecifierSet) -> str | None:
    """The version an exact pin (`==`, `===`) fixes, else None."""
    for specifier in specifiers:
        if specifier.operator in {"==", "==="} and "*" not in specifier.version:
            return specifier.version
    return None


@dataclass(frozen=True)
class Verdict:
    """What pip's resolver said for one release and platform."""

    release: str
    platform: str
    resolved: dict[str, str]  # name → version, everything pip would install
    error: str | None
    cached: bool


def _verdict_path(release: Release, platform: str) -> Path:
    digest = requirements_digest()[:16]
    return cache_dir() / "verdicts" / f"{release.version}-{platform}-{digest}.json"


def _verdict_key(release: Release, platform: str) -> dict[str, Any]:
    return {
        "homeassistant": release.version,
        "python": release.python,
        "platforms": list(PLATFORMS[platform]),
        "requirements": manifest_requirements(),
        "requirements_sha256": requirements_digest(),
    }


def _cached_verdict(release: Release, platform: str) -> Verdict | None:
    path = _verdict_path(release, platform)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("key") != _verdict_key(release, platform):
        return None
    return Verdict(release.version, platform, data["resolved"], None, cached=True)


def resolve(release: Release, platform: str) -> Verdict:
    """Ask pip whether the requirements install under the release's constraints."""
    if (verdict := _cached_verdict(release, platform)) is not None:
        return verdict
    platform_options = [
        option for tag in PLATFORMS[platform] for option in ("--platform", tag)
    ]
    result = _pip(
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        "-",
        "--only-binary=:all:",
        "--python-version",
        release.python,
        *platform_options,
        "--constraint",
        str(constraints_path(release)),
        *manifest_requirements(),
    )
    if result.returncode != 0:
        return Verdict(release.version, platform, {}, _pip_errors(result), False)
    report = json.loads(result.stdout)
    resolved = {
        str(canonicalize_name(item["metadata"]["name"])): str(
            item["metadata"]["version"]
        )
        for item in report["install"]
    }
    path = _verdict_path(release, platform)
    path.parent.mkdir(exist_ok=True)
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    data = {"key": _verdict_key(release, platform), "resolved": resolved}
    scratch.write_text(json.dumps(data, indent=1), encoding="utf-8")
    scratch.replace(path)
    return Verdict(release.version, platform, resolved, None, cached=False)


CASES = [(release, platform) for release in RELEASES for platform in PLATFORMS]


@pytest.fixture(scope="module")
def verdicts() -> dict[tuple[Release, str], Verdict]:
    """Every verdict, the missing ones asked of pip in parallel."""
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(constraints_path, RELEASES))
        results = pool.map(lambda case: resolve(*case), CASES)
        return dict(zip(CASES, results, strict=True))


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("release", "platform"),
    CASES,
    ids=[f"{release.version}-{platform}" for release, platform in CASES],
)
def test_requirements_resolve(
    verdicts: dict[tuple[Release, str], Verdict], release: Release, platform: str
) -> None:
    verdict = verdicts[release, platform]
    label = f"Home Assistant {release.version}, Python {release.python}, {platform}"
    assert verdict.error is None, (
        f"{label}: the manifest's requirements {manifest_requirements()} do not "
        f"install under Home Assistant's constraints:\n{verdict.error}"
    )
    allowed = constraints(release)
    for text in manifest_requirements():
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in verdict.resolved, f"{label}: {text} was not resolved"
        version = Version(verdict.resolved[name])
        assert requirement.specifier.contains(version, prereleases=True), label
        assert allowed.get(name, SpecifierSet()).contains(version, prereleases=True)
    for package, resolved in verdict.resolved.items():
        if (pin := pinned(allowed.get(package, SpecifierSet()))) is not None:
            # Proof that pip read the constraints.
            assert Version(resolved) == Version(pin), f"{label}: {package} {resolved}"
    how = "cached" if verdict.cached else "resolved"
    listing = ", ".join(f"{name} {v}" for name, v in sorted(verdict.resolved.items()))
    print(f"{label}: {listing} ({how})")  # noqa: T201


@pytest.mark.timeout(900)
@pytest.mark.parametrize("release", RELEASES, ids=lambda release: release.version)
def test_no_requirement_pins_what_home_assistant_pins(release: Release) -> None:
    """An exact pin of a package Home Assistant pins breaks every other release."""
    pins = {
        name: version
        for name, specifiers in constraints(release).items()
        if (version := pinned(specifiers)) is not None
    }
    for text in manifest_requirements():
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in pins:
            assert pinned(requirement.specifier) is None, (
                f"{text}: Home Assistant {release.version} pins {name}=={pins[name]} "
                "itself; list it without a version"
            )


def test_release_constants_are_ordered() -> None:
    versions = [Version(release.version) for release in RELEASES]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    for release in RELEASES:
        assert re.fullmatch(r"3\.\d+\.\d+", release.python), release


def test_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTSP_ANNOUNCER_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache" / "wheels"
    assert cache_dir().is_dir()
    shutil.rmtree(tmp_path / "cache")
