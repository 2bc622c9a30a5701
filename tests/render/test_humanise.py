"""Humanisation: seeded, bar-local, gentle, and never moving a note out of its bar."""

import pytest

from cantus.harmony.rules import ChordSpan
from cantus.music.chords import ChordSymbol
from cantus.music.notes import Bar, Meter, Note
from cantus.music.styles import Energy, Style
from cantus.render.arrangement import ArrangedBar, Humanise, arrange_tracks, humanise_bar

METER = Meter(4, 4)


def bars(count: int) -> list[ArrangedBar]:
    out = []
    for index in range(count):
        melody = Bar(
            METER,
            tuple(
                Note(onset, 60 + (index + onset // 480) % 12, 480, 90)
                for onset in range(0, METER.bar_ticks, 480)
            ),
        )
        out.append(
            ArrangedBar(
                melody,
                [ChordSpan(0, METER.bar_ticks, ChordSymbol.parse("C"), "I")],
                [Note(0, p, METER.bar_ticks, 70) for p in (48, 52, 55)],
                [Note(0, 36, 960, 85), Note(960, 43, 960, 85)],
                [(0, "la")],
            )
        )
    return out


def arrange(items, humanise, first_index=0, total=None):
    return arrange_tracks(
        items,
        style=Style.FOLK,
        energy=Energy.HIGH,
        first_index=first_index,
        total_bars=total,
        humanise=humanise,
    )


def test_same_seed_same_notes_other_seed_other_notes():
    one = arrange(bars(4), Humanise(7))
    assert one == arrange(bars(4), Humanise(7))
    assert one != arrange(bars(4), Humanise(8))
    assert one != arrange(bars(4), None)


def test_segments_arranged_apart_equal_the_piece_arranged_whole():
    piece = bars(8)
    whole = arrange(piece, Humanise(3))
    for name_index in range(4):
        joined = []
        for first in (0, 4):
            segment = arrange(piece[first : first + 4], Humanise(3), first_index=first, total=8)
            joined += [
                Note(n.onset + first * METER.bar_ticks, n.pitch, n.duration, n.velocity)
                for n in segment[name_index].notes
            ]
        assert sorted(joined) == list(whole[name_index].notes)


def test_notes_only_move_later_inside_their_bar_and_keep_their_ends():
    plain = arrange(bars(6), None)
    human = arrange(bars(6), Humanise(11))
    moved = changed_velocity = 0
    for before, after in zip(plain, human, strict=True):
        assert len(before.notes) == len(after.notes)
        # Pair notes by (bar, pitch, end): humanised onsets sort differently only within ties.
        for b, a in zip(
            sorted(before.notes, key=lambda n: (n.end, n.pitch, n.onset)),
            sorted(after.notes, key=lambda n: (n.end, n.pitch, n.onset)),
            strict=True,
        ):
            assert a.end == b.end and a.pitch == b.pitch
            assert 0 <= a.onset - b.onset <= 15
            assert a.onset // METER.bar_ticks == b.onset // METER.bar_ticks
            assert a.duration * 2 >= b.duration
            assert 1 <= a.velocity <= 127 and abs(a.velocity - b.velocity) <= 30
            moved += a.onset != b.onset
            changed_velocity += a.velocity != b.velocity
    assert moved > 10 and changed_velocity > 10


def test_note_at_the_end_of_a_bar_stays_in_it():
    notes = [Note(METER.bar_ticks - 1, 60, 1, 127), Note(0, 60, 1, 1)]
    for seed in range(50):
        out = humanise_bar(
            notes, Humanise(seed), part="drums", bar_index=0, bar_ticks=METER.bar_ticks
        )
        assert out[0].onset == METER.bar_ticks - 1 and out[0].duration == 1
        assert out[1].onset == 0 and out[1].velocity >= 1


@pytest.mark.parametrize("humanise", [True, False])
def test_piece_parts_follow_the_switch(humanise):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from piece_fixtures import piece_events, spec, table_events

    from cantus.render.piece import PieceParts

    events = table_events(piece_events(spec(4)))
    parts = PieceParts.from_events(events, humanise=humanise)
    plain = PieceParts.from_events(events, humanise=False)
    assert (parts.tracks(0, 4) != plain.tracks(0, 4)) is humanise
    # The MIDI follows the arrangement; the melody as composed is untouched.
    assert [n.onset_ticks for n in parts.melody[0].notes] == [
        0,
        240,
        480,
        720,
        960,
        1200,
        1440,
        1680,
    ]
