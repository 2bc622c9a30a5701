"""MMA drum grooves as data: the reader of MMA's groove language, the committed table it
wrote, and the folk kit playing it."""

import json
from pathlib import Path

import pytest

from cantus.music.notes import Meter
from cantus.music.styles import Energy, Style
from cantus.render.arrangement import drum_pattern
from cantus.render.grooves import (
    FOLK_GROOVES,
    GROOVES_PATH,
    MMA_DIR,
    GrooveError,
    groove_bar,
    import_grooves,
    load_grooves,
    parse_groove_file,
)

GROOVE_FILE = """
// a groove file in MMA's language, as the stdlib writes them
Time 4
Timesig 4 4
Include pats
SeqSize 2
Begin Drum-Kick
    Tone KickDrum1
    Sequence D13 D1
End
Begin Drum-Snare
\tSequence\t{D1 Shift 1; D1 Shift 3} \\
    /
\tTone SnareDrum1
\tVolume pp
End
Begin Drum-Odd
    Tone VibraSlap
    Sequence D1
End
DefGroove Plain   two bars
Drum-Kick Sequence * z
DefGroove Sparse  the second bar without a kick
Groove Plain
Drum-Snare Sequence -
DefGroove KickOnly
"""
PATTERNS = """
Begin Drum Define
    D1    1 0 90    // hit on 1
    D13   D1 * 2
End
"""


@pytest.fixture
def mma_tree(tmp_path: Path) -> Path:
    (tmp_path / "includes").mkdir()
    (tmp_path / "includes" / "pats.mma").write_text(PATTERNS)
    (tmp_path / "groove.mma").write_text(GROOVE_FILE)
    return tmp_path


def test_the_reader_follows_mmas_patterns_sequences_and_grooves(mma_tree):
    grooves = {g.name: g for g in parse_groove_file(mma_tree / "groove.mma", mma_tree)}
    assert list(grooves) == ["Plain", "Sparse", "KickOnly"]
    plain = grooves["Plain"]
    assert (plain.meter, plain.beats, len(plain.bars)) == ("4/4", 4, 2)
    # kick on 1 and 3 (D1 * 2), snare on 2 and 4 at pp (0.25 of 90), the slap not a kit sound
    assert plain.bars[0] == ((0.0, 36, 100), (1.0, 38, 25), (2.0, 36, 100), (3.0, 38, 25))
    assert plain.bars[1] == ((0.0, 36, 100), (1.0, 38, 25), (3.0, 38, 25))  # "/" repeats
    # "*" keeps a bar's pattern, "z" silences it; "Groove" restores a saved groove, "-" clears
    assert [k for _, k, _ in grooves["Sparse"].bars[1]] == [38, 38]
    assert {k for bar in grooves["KickOnly"].bars for _, k, _ in bar} == {36}


def test_a_pattern_it_cannot_follow_is_named_with_its_file_and_statement(mma_tree):
    (mma_tree / "bad.mma").write_text("Begin Drum-Kick\n Tone KickDrum1\n Sequence D99\nEnd\n"
                                      "DefGroove Broken\n")  # fmt: skip
    with pytest.raises(GrooveError, match=r"bad.mma, statement 5 .*unknown drum pattern 'D99'"):
        parse_groove_file(mma_tree / "bad.mma", mma_tree)


def test_the_committed_table_holds_every_groove_the_folk_kit_plays():
    grooves = load_grooves()
    for (meter, energy), name in FOLK_GROOVES.items():
        assert grooves[name].meter == meter and Energy(energy) is not Energy.LOW
        assert all(bar for bar in grooves[name].bars)
    assert "GPL-2+" in json.loads(GROOVES_PATH.read_text())["source"]


@pytest.mark.skipif(not (MMA_DIR / "lib").is_dir(), reason="needs Debian's mma")
def test_the_table_is_what_importing_mma_writes(tmp_path):
    import_grooves(out=tmp_path / "grooves.json")
    assert (tmp_path / "grooves.json").read_text() == GROOVES_PATH.read_text()


def test_a_groove_bar_lands_on_the_grid_of_the_pieces_meter():
    meter = Meter(6, 8)  # MMA writes 6/8 in 2 beats: the third eighth of beat 2 is "2.66"
    bar = groove_bar("68March", meter, 0, 1.0)
    assert {n.onset for n in bar} == {0, 720, 1200}
    assert max(n.velocity for n in bar) == 100
    assert groove_bar("68March", meter, 4, 1.0) == bar  # four bars, cycled
    assert max(n.velocity for n in groove_bar("68March", meter, 0, 0.5)) == 50
    with pytest.raises(ValueError, match="in 6/8, not 3/4"):
        groove_bar("68March", Meter(3, 4), 0, 1.0)


def test_the_folk_kit_plays_the_groove_a_dance_band_and_a_calm_piece_do_not():
    waltz = drum_pattern(Meter(3, 4), style=Style.FOLK, energy=Energy.MID, bar_index=0,
                         is_final=False)  # fmt: skip
    assert 81 in {n.pitch for n in waltz}  # the Waltz groove's triangle on its first bar
    assert 49 in {n.pitch for n in waltz}  # and the piece's opening crash
    later = drum_pattern(Meter(3, 4), style=Style.FOLK, energy=Energy.MID, bar_index=1,
                         is_final=False)  # fmt: skip
    assert [(n.onset, n.pitch) for n in later] == [
        (round(b * 480), k) for b, k, _ in load_grooves()["Waltz"].bars[1]
    ]
    for style, energy in ((Style.CELTIC, Energy.MID), (Style.FOLK, Energy.LOW)):
        notes = drum_pattern(Meter(3, 4), style=style, energy=energy, bar_index=1,
                             is_final=False)  # fmt: skip
        assert 81 not in {n.pitch for n in notes}
