"""``cantus edit``'s bar ranges, and its refusal of no edit or two at once (before any call)."""

import pytest
from typer.testing import CliRunner

from cantus.cli.edit import parse_bars
from cantus.cli.main import app


def test_bar_ranges_are_one_based_and_inclusive():
    assert (parse_bars("5-8").first_bar, parse_bars("5-8").last_bar) == (5, 8)
    assert (parse_bars(" 3 ").first_bar, parse_bars(" 3 ").last_bar) == (3, 3)
    with pytest.raises(ValueError, match="not a bar range"):
        parse_bars("5-x")


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["--regenerate", "1-2", "--palette", "piano"],
        ["--regenerate", "x"],
        ["--regenerate", "1-2", "--section", "B"],
        ["--section", "B"],
    ],
)
def test_one_edit_is_asked_for(arguments):
    result = CliRunner().invoke(app, ["edit", "ab" * 16, *arguments])
    assert result.exit_code == 2
