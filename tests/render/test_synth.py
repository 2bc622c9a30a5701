"""FluidSynth rendering: stems per part, and segments that join into the one-shot render."""

import numpy as np
import pytest

from cantus.bench.render import joint_discontinuity, synthetic_arrangement, tracks_in_ticks
from cantus.music.notes import Meter, Note, Track
from cantus.render import synth
from cantus.render.synth import (
    BLOCK_SAMPLES,
    SegmentRenderer,
    SynthUnavailable,
    find_soundfont,
    render_stems,
    render_tracks,
    ticks_to_samples,
)

try:
    find_soundfont()
    synth._load_fluidsynth()
except SynthUnavailable as missing:
    pytest.skip(f"synthesis unavailable: {missing}", allow_module_level=True)

SR = synth.SAMPLE_RATE


@pytest.fixture(scope="module")
def piece():
    """Four bars of 4/4 at 160 bpm: 6 s of music, four parts."""
    return synthetic_arrangement(11, bars=4, meter=Meter(4, 4), tempo_bpm=160.0, energy="high")


@pytest.fixture(scope="module")
def one_shot(piece):
    return render_tracks(piece.tracks, tempo_bpm=piece.tempo_bpm, end_tick=piece.end_tick)


def render_in_segments(piece, boundaries, *, cumulative=False):
    renderer = SegmentRenderer(piece.tempo_bpm)
    chunks, joints, first = [], [], 0
    for end in [*boundaries, piece.end_tick]:
        tracks = tracks_in_ticks(piece.tracks, 0 if cumulative else first, end)
        chunks.append(renderer.render_until(end, tracks))
        joints.append(sum(len(c) for c in chunks))
        first = end
    chunks.append(renderer.finish())
    return np.concatenate(chunks), joints[:-1]


def test_one_shot_render_is_stereo_float_of_the_expected_length(piece, one_shot):
    assert one_shot.dtype == np.float32 and one_shot.shape[1] == 2
    expected = ticks_to_samples(piece.end_tick, piece.tempo_bpm) + 2 * SR  # + 2 s tail
    assert abs(len(one_shot) - expected) <= BLOCK_SAMPLES
    assert 0.01 < np.abs(one_shot).max() < 1.0


@pytest.mark.parametrize(
    "boundaries",
    [
        [1920, 3840, 5760],  # every bar, as the render service publishes
        [1000, 1001, 4321],  # anywhere, including a one-tick segment
    ],
)
def test_segments_concatenate_to_the_one_shot_render(piece, one_shot, boundaries):
    segmented, joints = render_in_segments(piece, boundaries)
    assert segmented.shape == one_shot.shape
    assert np.abs(segmented - one_shot).max() <= 1e-6
    # No joint jumps more than the music does elsewhere (a click would).
    assert joint_discontinuity(segmented, joints) <= 1.0


def test_cumulative_tracks_play_each_note_once(piece, one_shot):
    segmented, _ = render_in_segments(piece, [1920, 3840], cumulative=True)
    assert np.abs(segmented - one_shot).max() <= 1e-6


def test_a_note_rings_across_a_segment_boundary():
    organ = 19  # sustains while held, unlike a piano
    long_note = Track("melody", organ, 0, [Note(0, 60, 1920 * 2, 100)])  # two bars, 120 bpm
    renderer = SegmentRenderer(120.0)
    first = renderer.render_until(1920, [long_note])
    second = renderer.render_until(3840, [])  # nothing new: the note is still held
    tail = renderer.finish(1.5)
    quarter = SR // 4
    assert np.abs(second[:quarter]).max() > 0.2 * np.abs(first).max()
    assert np.abs(tail[-quarter:]).max() < 0.1 * np.abs(first).max()  # released, decayed


def test_stems_are_per_part_with_drums_on_their_own(piece):
    stems = render_stems(piece.tracks, tempo_bpm=piece.tempo_bpm, tail_seconds=0.2)
    assert list(stems) == ["melody", "chords", "bass", "drums"]
    lengths = {len(s) for s in stems.values()}
    assert len(lengths) == 1
    for name, stem in stems.items():
        assert np.sqrt(np.mean(stem**2)) > 1e-3, f"{name} is silent"


def test_notes_start_on_the_block_at_or_after_their_tick():
    tick = 1000  # 0.52 s at 120 bpm: sample 22968.75 -> block at 23040
    click = Track("drums", 0, 9, [Note(tick, 37, 120, 127)])  # side stick: sharp attack
    audio = render_tracks([click], tempo_bpm=120.0, end_tick=tick + 480, tail_seconds=0)
    first_sound = int(np.argmax(np.abs(audio).max(axis=1) > 1e-4))
    expected = ticks_to_samples(tick, 120.0)
    assert expected <= first_sound <= expected + BLOCK_SAMPLES + 32


def test_a_late_segment_end_is_refused():
    renderer = SegmentRenderer(100.0)
    renderer.render_until(960, [])
    with pytest.raises(ValueError, match="before the previous end"):
        renderer.render_until(480, [])
    renderer.close()


def test_missing_soundfont_says_what_to_install(tmp_path, monkeypatch):
    with pytest.raises(SynthUnavailable, match="does not exist"):
        find_soundfont(tmp_path / "none.sf2")
    monkeypatch.setattr(synth, "SOUNDFONT_DIRS", (tmp_path,))
    monkeypatch.delenv(synth.SOUNDFONT_ENV, raising=False)
    with pytest.raises(SynthUnavailable, match="fluid-soundfont-gm"):
        find_soundfont()


def _tail_db(stem: np.ndarray, after_seconds: float) -> float:
    """Loudest sample from ``after_seconds`` on, dB against the stem's peak."""
    level = np.abs(stem).max(axis=1)
    return float(20 * np.log10(level[int(after_seconds * SR) :].max() / level.max() + 1e-12))


def test_the_harp_is_damped_sooner_and_a_reused_channel_forgets_it():
    """FluidR3's harp rang ten seconds after its note-off; its release is halved
    (``RELEASE_OFFSET_TIMECENTS``): near silent 4 s on. A channel that then plays
    another program plays it with the SoundFont's own release."""
    from cantus.render.synth import RELEASE_OFFSET_TIMECENTS

    assert RELEASE_OFFSET_TIMECENTS[46] < 0
    harp = render_stems(
        [Track("chords", 46, 1, [Note(0, 60, 120, 80)])], tempo_bpm=120.0, tail_seconds=12.0
    )["chords"]
    assert _tail_db(harp, 1.5) > -60.0  # it still rings on after the note
    assert _tail_db(harp, 4.0) < -75.0  # the undamped harp was at -40 dB here
    # the channel switched to strings 5 s on (the harp silent by then): the strings sound
    # with their own release, as on a channel of their own
    later = Note(9600, 60, 480, 80)
    switched = render_stems(
        [Track("chords", 46, 1, [Note(0, 60, 120, 80), later], program_changes=[(9600, 48)])],
        tempo_bpm=120.0,
        tail_seconds=6.0,
    )["chords"]
    alone = render_stems([Track("strings", 48, 2, [later])], tempo_bpm=120.0, tail_seconds=6.0)[
        "strings"
    ]
    start = int(4.9 * SR)
    # within 0.6 % of the strings' peak (the harp's last trace); the harp's release kept on
    # the channel made the strings' release differ by 19 %
    assert np.abs(switched[start:] - alone[start:]).max() < 0.02 * np.abs(alone).max()
