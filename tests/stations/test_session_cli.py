"""``cantus signal`` and ``cantus plan`` refuse bad input before any call, naming the option."""

from __future__ import annotations

from typer.testing import CliRunner

from cantus.cli.main import app


def test_signal_and_plan_options_are_checked_before_calling_the_gateway():
    runner = CliRunner()
    for args, named in [
        (["signal", "walk-1"], "give a signal"),
        (["signal", "walk-1", "--mood", "calm"], "--mood"),
        (["signal", "walk-1", "--report", "boring"], "--report"),
        (["plan", "--minutes", "5"], "--from"),
        (["plan", "--from", "fast", "--to", "60"], "--from"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert named in result.output, (args, result.output)
