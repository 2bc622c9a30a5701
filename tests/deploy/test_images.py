"""The Dockerfiles pass hadolint and the image rules; the rules catch an unpinned base, a
root user and a single-stage build."""

from __future__ import annotations

from pathlib import Path

from cantus.deploy.images import DOCKER_DIR, Image, build_commands, images, lint, rule_problems


def test_dockerfiles_are_clean() -> None:
    assert lint() == []


def test_every_image_is_built_base_first() -> None:
    names = [image.name for image in images()]
    assert names[0] == "base"
    assert {"gateway", "melody", "harmony", "lyric", "render", "triton"} <= set(names)
    commands = build_commands("registry.example.com/cantus", "1.2.3")
    assert commands[0][5] == "registry.example.com/cantus/base:1.2.3"
    gateway = next(c for c in commands if "registry.example.com/cantus/gateway:1.2.3" in c)
    assert "BASE_IMAGE=registry.example.com/cantus/base:1.2.3" in gateway


def test_rules_catch_bad_dockerfiles(tmp_path: Path) -> None:
    def problems(name: str, text: str) -> list[str]:
        path = tmp_path / f"{name}.Dockerfile"
        path.write_text(text)
        return rule_problems(Image(name, path))

    assert any(
        "not pinned" in p
        for p in problems("triton", "FROM nvcr.io/x:latest AS a\nFROM nvcr.io/x\nUSER 1")
    )
    assert any("multi-stage" in p for p in problems("base", "FROM python:3.11-slim\nUSER 10001"))
    assert any(
        "no USER" in p
        for p in problems("base", "FROM python:3.11-slim AS a\nFROM python:3.11-slim")
    )
    assert any(
        "non-root" in p
        for p in problems("render", "ARG BASE_IMAGE=b:1\nFROM ${BASE_IMAGE}\nUSER 0")
    )
    assert any("BASE_IMAGE" in p for p in problems("lyric", "FROM python:3.11-slim\n"))
    assert (DOCKER_DIR / "hadolint.yaml").exists()
