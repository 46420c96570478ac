"""Write or check requirements.lock: every package that `pip install -e '.[dev]'` resolved.

The lock is read off the installed environment (the Python that runs this script): the
dependency closure of nomosx with its `dev` extra, each at its installed version. It is the
constraints file of `make install` and the input of `pip-audit` (scripts/security.sh).

    python scripts/lock.py           # write requirements.lock
    python scripts/lock.py --check   # exit 1 if the environment and the lock differ

A local version label is dropped (torch 2.13.0+cpu is locked as torch==2.13.0): advisories
name the upstream release, and `==2.13.0` admits the CPU build that `make install` takes.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PROJECT = "nomosx"
HEADER = """\
# The resolved dependencies of nomosx[dev] on Python 3.11 (Linux x86_64): constraints of
# `make install` and input of pip-audit. Written by `make lock` (scripts/lock.py); do not edit.
# torch is locked without its local label: the CPU build 2.13.0+cpu satisfies torch==2.13.0.
"""


def closure(project: str, extras: set[str]) -> dict[str, str]:
    """Map each package of the project's installed dependency closure to its version."""
    found: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(project, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"lock: {name} is required but not installed: run `make install` first")
        if canonicalize_name(name) != PROJECT:
            found[canonicalize_name(name)] = Version(dist.version).public
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(
                req.marker.evaluate({**default_environment(), "extra": extra})
                for extra in ({""} | set(wanted))
            ):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return found


def render(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={pins[name]}\n" for name in sorted(pins))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = render(closure(PROJECT, {"dev"}))
    if not args.check:
        LOCK.write_text(text)
        return 0
    if not LOCK.exists() or LOCK.read_text() != text:
        old = set(LOCK.read_text().splitlines()) if LOCK.exists() else set()
        new = set(text.splitlines())
        for line in sorted(old - new):
            print(f"  lock only:        {line}", file=sys.stderr)
        for line in sorted(new - old):
            print(f"  environment only: {line}", file=sys.stderr)
        print(
            "requirements.lock does not match the installed dependencies of nomosx[dev]: "
            "run `make lock` and commit requirements.lock",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
