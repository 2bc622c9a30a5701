"""A REPEAT section plays its source note for note, so it must end on the source's cadence:
the planner makes one that must end otherwise (the piece's last section) a VARY."""

import pytest

from cantus.music.form import Cadence, Treatment, form_names, plan_form
from cantus.music.notes import Key
from cantus.music.styles import Energy


@pytest.mark.parametrize("name", form_names())
def test_repeats_end_on_their_sources_cadence_and_pieces_on_the_tonic(name):
    for bars in range(1, 161):
        try:
            plan = plan_form(name, bars=bars, key=Key(0), energy=Energy.MID)
        except Exception:  # a named form longer than the bars: refused, tested elsewhere
            continue
        assert plan.total_bars == bars
        assert plan.sections[-1].cadence is Cadence.AUTHENTIC
        for section in plan.sections:
            if section.treatment is Treatment.REPEAT:
                assert plan.sections[section.source].cadence is section.cadence, (bars, section)


def test_abac_over_28_bars_closes_with_a_varied_a():
    plan = plan_form("ABAC", bars=28, key=Key(0), energy=Energy.MID)
    last = plan.sections[-1]
    assert plan.sections[last.source].cadence is Cadence.HALF
    assert (last.treatment, last.cadence) == (Treatment.VARY, Cadence.AUTHENTIC)
