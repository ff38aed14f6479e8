"""The environment the tests run in is the one constraints.txt pins (`make setup` installs
with it): the figures in dvc.lock and the docs depend on the versions of TensorFlow, NumPy,
librosa and the rest, so a clean clone reproduces them only with the same versions."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def pinned() -> dict[str, str]:
    versions = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            versions[canonicalize_name(name)] = version
    return versions


def test_every_pinned_package_is_installed_at_its_pinned_version():
    wrong = {}
    for name, version in pinned().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"(pinned, installed): {wrong}; `make setup` installs the pinned ones"


def test_every_package_the_project_needs_is_pinned():
    """ser's requirements with the dev extra, and theirs, all the way down."""
    versions = pinned()
    seen, queue, missing = set(), [("ser", ("dev",))], set()
    while queue:
        name, extras = queue.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker and not any(
                requirement.marker.evaluate(environment) for environment in environments
            ):
                continue
            key = canonicalize_name(requirement.name)
            if key != "ser" and key not in versions:  # ser: the project, more of its extras
                missing.add(key)
            else:
                queue.append((key, tuple(sorted(requirement.extras))))
    assert not missing, f"not in constraints.txt: {sorted(missing)}; run `make lock`"
