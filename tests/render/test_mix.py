"""Mixing and mastering: loudness on target, true peak under the ceiling, seamless segments."""

import dataclasses
import itertools
import math

import numpy as np
import pyloudnorm
import pytest

from cantus.bench.render import joint_discontinuity, synthetic_arrangement, tracks_in_ticks
from cantus.music.notes import Meter
from cantus.render import synth
from cantus.render.mix import (
    GAIN_RAMP_SECONDS,
    MAX_GAIN_STEP_DB,
    MAX_GAIN_STEP_LONG_DB,
    MAX_RIDE_DB,
    PALETTE_MIXES,
    PRESETS,
    RIDE_ATTACK_DB_PER_SECOND,
    RIDE_RELEASE_DB_PER_SECOND,
    SWELL_ALLOWANCE_LU,
    LoudnessMeter,
    Mixer,
    PartProfile,
    StreamingMaster,
    integrated_loudness,
    master,
    mix_stems,
    true_peak_dbtp,
)

SR = 44100
LOUDNESS_ERROR_LU = 0.5


def noise(seconds, level=0.1, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((int(seconds * SR), 2)) * level).astype(np.float32)


# --- measurement (no synthesis needed) ----------------------------------------------------


def test_running_meter_agrees_with_pyloudnorm_in_any_chunks():
    audio = noise(4.0)
    audio[SR : 2 * SR] *= 0.05  # a quiet second, to exercise the gates
    meter = LoudnessMeter(SR)
    for chunk in np.array_split(audio, [1, 777, 50000, 50001, 120000]):
        meter.add(chunk)
    reference = pyloudnorm.Meter(SR).integrated_loudness(audio.astype(np.float64))
    assert meter.integrated_lufs == pytest.approx(reference, abs=0.05)
    assert integrated_loudness(audio, SR) == pytest.approx(reference, abs=1e-9)


def test_true_peak_finds_the_peak_between_samples():
    # A sine at a quarter of the sample rate, sampled 45 degrees off its crests: every
    # sample is at 0.707 of the amplitude, the waveform itself reaches 1.0.
    n = np.arange(SR)
    sine = np.sin(2 * np.pi * n / 4 + np.pi / 4).astype(np.float32)[:, None].repeat(2, axis=1)
    assert 20 * np.log10(np.abs(sine).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(sine, SR) == pytest.approx(0.0, abs=0.1)


def _inter_sample_peaks(seconds=2.0, sample_peak_db=-1.5, seed=0):
    """Audio whose true peak lies ~3 dB over its sample peak: a sine at a quarter of the
    sample rate sampled 45 degrees off its crests, in bursts, over soft noise."""
    n = np.arange(int(seconds * SR))
    sine = np.sin(2 * np.pi * n / 4 + np.pi / 4) / np.sin(np.pi / 4)  # samples +-1
    bursts = (n // 2000) % 3 == 1
    audio = np.where(bursts, sine * 10 ** (sample_peak_db / 20), 0.0)
    audio = audio[:, None] + noise(seconds, level=0.02, seed=seed)
    return audio.astype(np.float32)


@pytest.mark.parametrize("ceiling", [-1.0, -2.0])
def test_true_peak_guard_holds_the_ceiling_in_any_chunks(ceiling):
    from cantus.render.mix import TruePeakGuard

    audio = _inter_sample_peaks()
    assert true_peak_dbtp(audio, SR) > ceiling + 1.0  # well over, between samples
    for edges in ([0, len(audio)], [0, 1, 11, 500, 4096, 30000, 30001, len(audio)]):
        guard = TruePeakGuard(ceiling)
        out = [guard.process(audio[a:b]) for a, b in itertools.pairwise(edges)]
        guarded = np.concatenate([*out, guard.flush()])
        assert guarded.shape == audio.shape
        assert true_peak_dbtp(guarded, SR) <= ceiling
        assert guard.dips > 0
        # only the bursts are touched (a dip reaches 96 samples before the first over):
        # the noise away from them passes unchanged
        n = np.arange(len(audio))
        quiet = ((n // 2000) % 3 != 1) & (n % 2000 >= 200) & (n % 2000 < 1800)
        assert np.array_equal(guarded[quiet], audio[quiet])


def test_true_peak_guard_leaves_audio_under_the_ceiling_alone():
    from cantus.render.mix import TruePeakGuard

    # samples near enough the ceiling that the guard interpolates them, none over it
    audio = _inter_sample_peaks(sample_peak_db=-5.0)
    assert true_peak_dbtp(audio, SR) < -1.2
    guard = TruePeakGuard(-1.0)
    assert np.array_equal(guard.apply(audio), audio)
    assert guard.dips == 0


def test_true_peak_limiter_streams_as_long_as_its_input_under_the_ceiling():
    from cantus.render.mix import TruePeakLimiter

    audio = _inter_sample_peaks(sample_peak_db=3.0) * np.float32(2.0)  # clipping hot
    limiter = TruePeakLimiter(PRESETS["streaming"], SR)
    chunks = [limiter.process(chunk) for chunk in np.array_split(audio, [3000, 3001, 40000])]
    streamed = np.concatenate([*chunks, limiter.flush()])
    assert streamed.shape == audio.shape
    assert true_peak_dbtp(streamed, SR) <= PRESETS["streaming"].ceiling_dbtp
    whole = TruePeakLimiter(PRESETS["streaming"], SR).apply(audio)
    assert whole.shape == audio.shape
    assert true_peak_dbtp(whole, SR) <= PRESETS["streaming"].ceiling_dbtp


def test_silence_has_no_loudness():
    silence = np.zeros((SR, 2), np.float32)
    assert integrated_loudness(silence, SR) == -math.inf
    assert LoudnessMeter(SR).integrated_lufs == -math.inf


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown mastering preset"):
        master({"melody": noise(1.0)}, SR, "loud")


# --- with synthesised parts ---------------------------------------------------------------

try:
    synth.find_soundfont()
    synth._load_fluidsynth()
    HAVE_SYNTH = True
except synth.SynthUnavailable:
    HAVE_SYNTH = False
needs_synth = pytest.mark.skipif(not HAVE_SYNTH, reason="FluidSynth or a GM SoundFont missing")


@pytest.fixture(scope="module")
def piece():
    """Eight bars of 4/4 at 176 bpm: 11 s of music."""
    return synthetic_arrangement(4, bars=8, meter=Meter(4, 4), tempo_bpm=176.0, energy="mid")


@pytest.fixture(scope="module")
def stems(piece):
    return synth.render_stems(piece.tracks, tempo_bpm=piece.tempo_bpm, end_tick=piece.end_tick)


@needs_synth
def test_mixing_in_segments_equals_mixing_at_once(stems):
    whole = mix_stems(stems, SR)
    mixer = Mixer(SR)
    edges = [0, 1, 4096, 9000, 70001, len(whole)]
    parts = [
        mixer.process({name: stem[a:b] for name, stem in stems.items()})
        for a, b in itertools.pairwise(edges)
    ]
    assert np.abs(np.concatenate(parts) - whole).max() <= 1e-6


@needs_synth
@pytest.mark.parametrize("preset", ["streaming", "broadcast"])
def test_master_hits_the_loudness_target_under_the_true_peak_ceiling(stems, preset):
    result = master(stems, SR, preset)
    target = PRESETS[preset]
    assert result.audio.shape == (len(stems["melody"]), 2)
    assert abs(result.integrated_lufs - target.target_lufs) <= LOUDNESS_ERROR_LU
    assert result.true_peak_dbtp <= target.ceiling_dbtp
    # The reported numbers are the file's, measured independently.
    assert integrated_loudness(result.audio, SR) == pytest.approx(result.integrated_lufs)
    assert true_peak_dbtp(result.audio, SR) == pytest.approx(result.true_peak_dbtp)


@needs_synth
def test_streamed_master_is_seamless_and_on_target(piece):
    renderer = synth.SegmentRenderer(piece.tempo_bpm)
    streaming = StreamingMaster(SR, "streaming")
    chunks, joints = [], []
    bar = piece.meter.bar_ticks
    for first in range(0, piece.end_tick, 2 * bar):  # two bars (2.7 s) a segment
        end = first + 2 * bar
        stems = renderer.render_stems_until(end, tracks_in_ticks(piece.tracks, first, end))
        chunks.append(streaming.process(stems))
        joints.append(sum(len(c) for c in chunks))
    chunks.append(streaming.finish(renderer.finish_stems()))
    audio = np.concatenate(chunks)

    assert len(audio) == sum(r.samples for r in streaming.ramps)  # nothing lost or added
    assert abs(integrated_loudness(audio, SR) - PRESETS["streaming"].target_lufs) <= (
        LOUDNESS_ERROR_LU
    )
    assert true_peak_dbtp(audio, SR) <= PRESETS["streaming"].ceiling_dbtp
    # The gain never steps: each segment starts where the last one ended, and moves at
    # most MAX_GAIN_STEP_DB, or 0.75 dB a second of the segment up to MAX_GAIN_STEP_LONG_DB.
    for before, after in zip(streaming.ramps, streaming.ramps[1:], strict=False):
        assert after.start_db == before.end_db
        seconds = after.samples / SR
        allowed = max(streaming.max_step_db, min(MAX_GAIN_STEP_LONG_DB, 0.75 * seconds))
        assert abs(after.end_db - after.start_db) <= allowed + 1e-9
    assert joint_discontinuity(audio, joints[:-1]) <= 1.0


def test_a_short_piece_that_gets_louder_half_way_still_lands_on_the_target():
    """Found by cantus bench render (seed 9: 16 bars of 2/4 at 148 bpm, four 3.2 s
    segments, the second half 2 dB louder): the gain could follow 1.5 dB a segment and the
    piece ended 0.88 LU loud. It may now move 0.75 dB for each second of a segment. Noise
    3 dB louder from the third segment: 0.73 LU loud before, 0.23 LU now."""
    quiet, loud = 0.004, 0.004 * 10 ** (3.0 / 20)  # under the bus compressor
    streaming = StreamingMaster(SR, "streaming")
    chunks = [
        streaming.process({"part": noise(3.2, level=level, seed=index)})
        for index, level in enumerate((quiet, quiet, loud, loud))
    ]
    audio = np.concatenate([*chunks, streaming.finish()])
    target = PRESETS["streaming"].target_lufs
    assert integrated_loudness(audio, SR) == pytest.approx(target, abs=LOUDNESS_ERROR_LU)
    steps = [abs(r.end_db - r.start_db) for r in streaming.ramps]
    assert max(steps) > MAX_GAIN_STEP_DB  # it needed the larger step
    assert max(steps) <= min(MAX_GAIN_STEP_LONG_DB, 0.75 * 3.2) + 1e-9


def test_planned_levels_keep_their_difference_instead_of_being_chased():
    """A quiet segment, then one 6 dB louder, planned 3 dB under and over the piece: the gain
    holds (the difference is meant), where unplanned it comes down after the loud one."""
    # Quiet enough to pass the mix bus compressor untouched.
    quiet, loud = noise(4.0, level=0.004, seed=1), noise(4.0, level=0.008, seed=2)

    def master_two(levels):
        streaming = StreamingMaster(SR, "streaming")
        first = streaming.process({"part": quiet}, level_db=levels[0])
        second = streaming.process({"part": loud}, level_db=levels[1])
        second = np.concatenate([second, streaming.finish()])
        return first, second, streaming

    first, second, planned = master_two((-3.0, 3.0))
    target = PRESETS["streaming"].target_lufs
    assert integrated_loudness(first, SR) == pytest.approx(target - 3.0, abs=0.5)
    assert planned.ramps[1].end_db == pytest.approx(planned.ramps[0].end_db, abs=0.2)
    # The piece lands where the planned levels put it: their power mean over the target
    # (``section_levels_db`` plans them around 0 dB).
    planned_mean = 10 * math.log10((10 ** (-0.3) + 10**0.3) / 2)
    assert integrated_loudness(np.concatenate([first, second]), SR) == pytest.approx(
        target + planned_mean, abs=0.5
    )
    _, _, unplanned = master_two((0.0, 0.0))
    assert unplanned.ramps[1].end_db < unplanned.ramps[0].end_db - 1.0
    # Level 0 is exactly the unplanned master.
    plain = StreamingMaster(SR, "streaming")
    assert np.array_equal(plain.process({"part": quiet}), master_two((0.0, 0.0))[0])


def test_the_gain_never_pushes_a_quiet_segment_further_down():
    """After a loud segment the running integral is over the target; the quiet segment that
    follows keeps at least its gain (chasing the integral alone took 2.5 dB off ambient's
    quiet bridge after a loud statement, and the piece landed 1.2 LU under), and a loud one
    is never pushed up to make up for a quiet past."""
    quiet, loud = 0.004, 0.008  # under the bus compressor

    def ramps(levels):
        streaming = StreamingMaster(SR, "streaming")
        for index, level in enumerate(levels):
            streaming.process({"part": noise(4.0, level=level, seed=index)})
        return streaming.ramps

    _, after_loud, quiet_again = ramps((quiet, loud, quiet))
    assert after_loud.end_db < after_loud.start_db - 1.0
    assert quiet_again.end_db >= quiet_again.start_db
    _, after_quiet, loud_again = ramps((loud, quiet, loud))
    assert after_quiet.end_db > after_quiet.start_db + 1.0
    assert loud_again.end_db <= loud_again.start_db


def test_an_ending_is_brought_down_as_it_rings_and_never_pushed_up():
    """The final chord's hold and release come as the ending: one that rings louder than the
    piece is faded down over its hold, one that dies away keeps the last gain (it used to get
    up to 1.5 dB more, chasing the quiet release)."""
    body = noise(6.0, level=0.004, seed=1)

    def ending_gain(tail_level):
        streaming = StreamingMaster(SR, "streaming")
        streaming.process({"part": body})
        before = streaming.gain_db
        tail = noise(4.0, level=tail_level, seed=2)
        tail[int(1.5 * SR) :] *= np.linspace(1.0, 0.0, len(tail) - int(1.5 * SR))[:, None]
        streaming.process({"part": tail}, ending_seconds=1.5)
        streaming.finish()
        return before, streaming.gain_db, streaming.ramps[-1]

    before, after, ramp = ending_gain(0.012)  # a held chord 9.5 dB over the body
    assert after < before - 1.0
    assert ramp.ramp_samples == round(GAIN_RAMP_SECONDS * SR)  # the hold is shorter
    before, after, _ = ending_gain(0.001)  # a chord dying away under the body
    assert after == pytest.approx(before)
    streaming = StreamingMaster(SR, "streaming")
    streaming.process({"part": body})
    streaming.process({"part": noise(4.0, level=0.012, seed=2)}, ending_seconds=3.0)
    assert streaming.ramps[-1].ramp_samples == 3 * SR  # ramped over the whole hold


def _momentary(audio):
    from cantus.bench.form import momentary_loudness

    return momentary_loudness(audio, SR)


def _ride_of(ramp):
    """The swell ride (dB) at each sample of ``ramp``'s segment."""
    assert ramp.ride_db is not None
    return np.interp(np.arange(ramp.samples), ramp.ride_offsets, ramp.ride_db)


def _swell_piece(swell_db, *, level_db=0.0, swell_at=(3.0, 4.5), seconds=6.0):
    """8 s of steady noise, then a ``seconds`` segment whose ``swell_at`` span is
    ``swell_db`` louder (under the bus compressor), planned at ``level_db``."""
    quiet = 0.003
    streaming = StreamingMaster(SR, "streaming")
    body = streaming.process({"part": noise(8.0, level=quiet, seed=1)})
    segment = noise(seconds, level=quiet, seed=2)
    first, last = (round(t * SR) for t in swell_at)
    segment[first:last] *= 10 ** (swell_db / 20)
    out = streaming.process({"part": segment}, level_db=level_db)
    return streaming, body, np.concatenate([out, streaming.finish()])


def test_a_swell_over_the_piece_is_ridden_down_smoothly():
    """A held note that rings in the room (therapy's pan flute on G sharp: 5.4 LU over the
    piece in its last bar) is taken down to the allowance over what was heard, by a slow
    ride that starts before it and comes back after it; the music around it keeps its gain."""
    streaming, body, after = _swell_piece(8.0)
    ceiling = np.percentile(_momentary(body), 95) + SWELL_ALLOWANCE_LU
    assert _momentary(after).max() <= ceiling + 0.5
    ride = _ride_of(streaming.ramps[1])
    assert -MAX_RIDE_DB - 1e-9 <= ride.min() <= -1.0
    slope = np.diff(ride) * SR  # dB a second
    assert slope.min() >= -RIDE_ATTACK_DB_PER_SECOND - 1e-6
    assert slope.max() <= RIDE_RELEASE_DB_PER_SECOND + 1e-6
    assert ride[: round(2.0 * SR)].min() > -1e-6  # a second before the swell: untouched
    assert ride[-1] > -1e-6  # back before the segment ends


def test_a_planned_swell_and_a_small_one_are_left_alone():
    """A louder segment the plan asks for (the last chorus over the piece) and a swell
    within the allowance keep their loudness: the ride is no compressor."""
    planned = _swell_piece(8.0, level_db=8.0, swell_at=(0.0, 6.0))
    for streaming, _, _ in (planned, _swell_piece(1.0)):
        assert streaming.ramps[1].ride_db is None


def test_a_ride_at_a_segment_s_end_is_released_in_the_next():
    """A swell at the end of a segment: the next segment starts where the ride stood and
    comes back up at the release rate, no step at the joint."""
    streaming = StreamingMaster(SR, "streaming")
    streaming.process({"part": noise(8.0, level=0.003, seed=1)})
    segment = noise(6.0, level=0.003, seed=2)
    segment[round(4.0 * SR) :] *= 10 ** (8.0 / 20)
    streaming.process({"part": segment})
    streaming.process({"part": noise(4.0, level=0.003, seed=3)})
    before, after = streaming.ramps[1], streaming.ramps[2]
    assert _ride_of(before)[-1] < -1.0
    last = before.db_at(np.array([before.samples - 1.0]))[0]
    first = after.db_at(np.array([0.0]))[0]
    assert first == pytest.approx(last, abs=0.05)
    ride = _ride_of(after)
    assert ride[0] < -1.0 and ride[-1] > -1e-6
    assert np.diff(ride).max() * SR <= RIDE_RELEASE_DB_PER_SECOND + 1e-6


# --- palette mixes ------------------------------------------------------------------------


def test_every_palette_has_its_own_mix():
    from cantus.render.mix import PALETTE_MIXES, PART_PROFILES, palette_profiles, palette_reverb
    from cantus.render.palettes import PALETTES

    assert set(PALETTE_MIXES) == set(PALETTES)
    rooms = {tuple(sorted(palette_reverb(name).items())) for name in PALETTES}
    assert len(rooms) >= 3  # a band's room, a hall, a church at least
    for name in PALETTES:
        profiles = palette_profiles(name)
        assert set(profiles) == set(PART_PROFILES)
        # the accompaniment stands to one side of the melody, not on top of it
        assert abs(profiles["chords"].pan - profiles["melody"].pan) >= 0.1
    assert palette_profiles(None) == PART_PROFILES
    assert palette_reverb("no-such-palette") == palette_reverb(None)


def test_a_palette_mix_places_its_parts_on_the_stage():
    """The folk band's guitar (chords) comes out on the left, its strings (pad) on the right."""
    for part, louder in (("chords", 0), ("pad", 1)):
        bus = mix_stems({part: noise(2.0)}, SR, palette="folk")
        left, right = (float(np.sqrt(np.mean(bus[:, c] ** 2))) for c in (0, 1))
        assert (left, right)[louder] > 1.5 * (left, right)[1 - louder], part


def test_a_part_s_width_narrows_its_stereo_image():
    """Ambient narrows its stereo-sampled pads (their side signal) and its hall: the mix of
    a wide (uncorrelated) pad comes out far more correlated than at full width."""
    from cantus.render.mix import PALETTE_MIXES, palette_profiles, palette_reverb

    def correlation(bus):
        left, right = bus[:, 0].astype(np.float64), bus[:, 1].astype(np.float64)
        return float((left * right).sum() / np.sqrt((left**2).sum() * (right**2).sum()))

    wide = noise(2.0, seed=3)  # left and right independent: correlation ~0
    narrowed = mix_stems({"pad": wide}, SR, palette="ambient")
    profiles = palette_profiles("ambient")
    full = Mixer(
        SR,
        {**profiles, "pad": dataclasses.replace(profiles["pad"], width=1.0)},
        {**palette_reverb("ambient"), "width": 1.0},
    )
    unnarrowed = np.concatenate([full.process({"pad": wide}), full.flush()])
    assert PALETTE_MIXES["ambient"].width["pad"] < 1.0
    assert correlation(narrowed) > correlation(unnarrowed) + 0.3
    # width 0 is mono: both channels the same before the pan
    mono = Mixer(SR, {"part": PartProfile(width=0.0, highpass_hz=None, reverb_send=0.0)})
    out = np.concatenate([mono.process({"part": wide}), mono.flush()])
    assert np.allclose(out[:, 0], out[:, 1], atol=1e-6)


@needs_synth
def test_a_palette_mix_in_segments_equals_it_at_once(stems):
    whole = mix_stems(stems, SR, palette="ambient")
    from cantus.render.mix import palette_profiles, palette_reverb

    segmented = Mixer(SR, palette_profiles("ambient"), palette_reverb("ambient"))
    edges = [0, 5000, 60000, len(whole)]
    parts = [
        segmented.process({name: stem[a:b] for name, stem in stems.items()})
        for a, b in itertools.pairwise(edges)
    ]
    assert np.abs(np.concatenate(parts) - whole).max() <= 1e-6
    assert np.abs(whole - mix_stems(stems, SR)).max() > 1e-3  # not the default mix


@pytest.mark.parametrize("palette", sorted(PALETTE_MIXES))
def test_a_sung_piece_makes_room_for_the_voice_in_its_accompaniment(palette):
    from cantus.render.mix import VOICE_ROOM_DIP, palette_profiles, vocal_profiles

    plain, sung = palette_profiles(palette), vocal_profiles(palette)
    for part in ("chords", "pad", "colour"):
        assert sung[part].eq == (*plain[part].eq, VOICE_ROOM_DIP)
        assert VOICE_ROOM_DIP not in plain[part].eq
    assert sung["bass"].eq == plain["bass"].eq


def test_the_voice_is_warmer_in_the_slow_palettes_than_over_a_band():
    from cantus.render.mix import vocal_profiles

    def presence_db(palette: str) -> float:
        return max(g for kind, hz, g, _ in vocal_profiles(palette)["vocals"].eq if 2000 < hz < 4000)

    def top_db(palette: str) -> float:
        return sum(
            g for kind, _, g, _ in vocal_profiles(palette)["vocals"].eq if kind == "high_shelf"
        )

    for warm in ("lullaby", "ambient", "chorale", "therapy"):
        assert presence_db(warm) < presence_db("folk")
        assert top_db(warm) < top_db("celtic")
    assert vocal_profiles("folk")["vocals"].eq == vocal_profiles("celtic")["vocals"].eq
