"""cantus.bench.clients writes its sections into reliability.md in place: the kill -9
campaign's sections and anything else in the file stay."""

from __future__ import annotations

from cantus.bench.clients import replace_section


def test_a_section_is_replaced_in_place_and_a_new_one_appended(tmp_path) -> None:
    path = tmp_path / "reliability.md"
    path.write_text("# Reliability\n\n## Totals\n\nkill\n\n## Clients\n\nold\n\n## Notes\n\nkept\n")
    replace_section(path, "## Clients\n\nnew\n")
    assert path.read_text() == (
        "# Reliability\n\n## Totals\n\nkill\n\n## Clients\n\nnew\n\n## Notes\n\nkept\n"
    )
    replace_section(path, "## Hostile input\n\nmany\n")
    assert path.read_text().endswith("## Notes\n\nkept\n\n## Hostile input\n\nmany\n")
    replace_section(path, "## Hostile input\n\nmore\n")
    assert path.read_text().count("## Hostile input") == 1
    assert path.read_text().endswith("## Hostile input\n\nmore\n")


def test_a_restart_summary_says_how_each_process_ended():
    from cantus.bench.clients import restart_summary

    child = {
        "restarts": 3,
        "history": [
            {"exit": "exit code 1"},
            {"exit": "killed by SIGKILL (signal 9)"},
            {"exit": "exit code 1"},
        ],
    }
    assert restart_summary(child) == "3 (exit code 1 ×2, killed by SIGKILL (signal 9) ×1)"
    assert restart_summary({"restarts": 1}) == "1"
