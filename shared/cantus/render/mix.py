"""Mixing and mastering of a piece's stems into a finished stereo track.

Signal flow, float32 stereo ``[samples, 2]`` at the synth's sample rate:

1. per part (``PART_PROFILES``; pedalboard): gain (dB), high-pass, EQ, compression,
   constant-power pan, and a send to a shared reverb bus;
2. bus: the parts plus the reverb return, then a gentle glue compressor;
3. master: a loudness-normalising gain (dB), then pedalboard's lookahead brick-wall
   limiter on sample peaks, its ceiling ``LIMITER_MARGIN_DB`` under the preset's
   true-peak ceiling, and a true-peak guard that dips the few interpolated peaks still
   over the ceiling (``TruePeakLimiter``): the true peak is guaranteed, as measured.

Loudness is integrated loudness after ITU-R BS.1770 (K-weighted, gated), in LUFS;
``integrated_loudness`` uses pyloudnorm, ``LoudnessMeter`` is the same measure kept
running over a stream. True peak (``true_peak_dbtp``) is the peak of the signal
oversampled 4x, in dBTP (dB relative to full scale).

Two ways to master, one per use:

* ``master(stems, sample_rate, preset)`` — offline, for the files of a finished piece:
  mixes the whole piece, then finds the gain by measuring the limited output and
  correcting it (a few passes), so integrated loudness lands within
  ``LOUDNESS_TOLERANCE_LU`` of the target.
* ``StreamingMaster`` — for audio published segment by segment while the piece is
  composed. Per-segment normalisation would make every segment equally loud, a jump at
  every joint; a gain fixed in advance would miss the target by several LU depending on
  instrumentation and density. So the gain is *running*: the first segment gets the gain
  that brings it to the target (nothing has been heard yet, so no jump); after that
  the gain follows the integrated loudness of everything so far, moving as a linear ramp
  across each segment and never faster than 0.75 dB a second (``MAX_GAIN_STEP_DB``): no
  step at any joint, and the whole piece converges on the target. It never moves the wrong
  way for the segment at hand (down on one under the target, up on one over it), so a loud
  passage is made up by later loud ones, not by pushing a quiet one further down. Where a
  segment swells over what was heard before (a held note ringing in the room), more than
  its plan asks, a slow ride within the segment takes the swell down, as a hand on the
  fader would (``SWELL_ALLOWANCE_LU``). Every
  processor keeps its state across segments (reverb tails, compressor envelopes, the
  limiter's lookahead), so the segments join seamlessly; the stream is delayed by the
  limiter's lookahead (``finish()`` returns the last of it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pedalboard as pb
import pyloudnorm
from scipy.signal import firwin, lfilter, upfirdn

from cantus.mastering_presets import DEFAULT_PRESET, PRESETS, MasterPreset

TRUE_PEAK_OVERSAMPLING = 4
"""Oversampling factor of the true-peak measurement and the limiter's detector."""

LIMITER_MARGIN_DB = 0.5
"""The brick-wall limiter's (sample-peak) ceiling below the preset's true-peak ceiling, dB:
room for the peaks between samples, so that the true-peak guard seldom has work."""

GUARD_MARGIN_DB = 0.1
"""The true-peak guard's ceiling below the preset's, dB (``TruePeakGuard``)."""

LOUDNESS_TOLERANCE_LU = 0.1
"""Offline mastering stops correcting its gain once within this many LU of the target."""

GAIN_RAMP_SECONDS = 2.0
"""The streaming master changes its gain over the first this many seconds of a segment."""

MAX_GAIN_STEP_DB = 1.5
"""Largest change of the streaming master's gain over one ``GAIN_RAMP_SECONDS`` ramp, dB
(0.75 dB a second, a slow fade rather than a jump)."""

MAX_GAIN_STEP_LONG_DB = 3.0
"""Largest change over one segment, dB, where ``MAX_GAIN_STEP_DB`` is not enough; no more
than 0.75 dB for each second of the segment, so over a piece the gain moves no faster on
average (``StreamingMaster``). A short piece in short segments (16 bars of 2/4 at 148 bpm:
four segments of 3.2 s) ended 0.88 LU loud when its second half was 2 dB louder than its
first and the gain could move 1.5 dB a segment."""

SWELL_ALLOWANCE_LU = 2.0
"""How far the momentary loudness (400 ms) of a segment may rise over the 95th percentile
of the momentary loudness heard so far (both less their planned levels) before the
streaming master rides it down (``StreamingMaster._ride``). A sustained tone through the
reverb rings louder on some pitches than on others: a steady tone through therapy's warm
hall sounded -0.6 to +5.2 dB over itself dry across two octaves (the reverb's comb filters
ring at their own frequencies; a convolution with a decaying-noise response was no flatter),
and a therapy piece's closing pan-flute G♯5, held in the ritardando, rose 5.4 LU over
everything before it. Measured on the form bench's 180 short endings in ten palettes
(session 31): at 3.0 the therapy piece still rose 3.6 LU; at 2.0 no therapy ending rises
more than 2.8 LU, as folk's and lullaby's do unridden, and the rides elsewhere are under
1.2 dB."""

MAX_RIDE_DB = 6.0
"""The most the swell ride takes off, dB."""

RIDE_ATTACK_DB_PER_SECOND = 12.0
RIDE_RELEASE_DB_PER_SECOND = 4.0
"""How fast the swell ride may go down into a swell (it sees the whole segment ahead) and
come back up after it: a hand on the fader, not a compressor."""

RIDE_HISTORY_SECONDS = 6.0
"""Music heard before the swell ride acts: the 95th percentile needs that much to stand."""

TYPICAL_BUS_LUFS = -22.0
"""Integrated loudness of a typical arrangement's bus before the master gain, LUFS
(measured over generated arrangements): the streaming gain before anything is measured."""

_TRUE_PEAK_FIR = (
    firwin(48, 1.0 / TRUE_PEAK_OVERSAMPLING, window=("kaiser", 5.0)) * TRUE_PEAK_OVERSAMPLING
).astype(np.float32)
_PREPARE_SAMPLES = 8192  # pedalboard's default block; see _prepared()


@dataclass(frozen=True)
class PartProfile:
    """How one part is treated in the mix. Gains in dB, frequencies in Hz, pan from -1
    (left) to +1 (right), ``reverb_send`` a linear amount 0..1, ``eq`` as
    (kind, frequency Hz, gain dB, Q) with kind ``peak``, ``low_shelf`` or ``high_shelf``,
    ``compressor`` as (threshold dBFS, ratio, attack ms, release ms) or None."""

    gain_db: float = 0.0
    pan: float = 0.0
    highpass_hz: float | None = 40.0
    eq: tuple[tuple[str, float, float, float], ...] = ()
    compressor: tuple[float, float, float, float] | None = None
    reverb_send: float = 0.15
    width: float = 1.0
    """Stereo width of the part's own (stereo-sampled) sound before it is panned: its
    side signal (L - R) scaled by this, 0 mono, 1 as the SoundFont plays it."""


PART_PROFILES: dict[str, PartProfile] = {
    # The tune: forward, with a little presence and the most reverb.
    "melody": PartProfile(
        gain_db=1.5,
        pan=0.05,
        highpass_hz=150.0,
        eq=(("peak", 3000.0, 2.0, 1.0),),
        compressor=(-24.0, 2.5, 10.0, 150.0),
        reverb_send=0.25,
    ),
    # Accompaniment: under the melody, mud cut, a little off centre.
    "chords": PartProfile(
        gain_db=-5.0,
        pan=-0.25,
        highpass_hz=120.0,
        eq=(("peak", 350.0, -2.5, 1.0), ("high_shelf", 6000.0, -2.0, 0.7)),
        compressor=(-26.0, 2.0, 20.0, 200.0),
        reverb_send=0.3,
    ),
    # Bass: centred, steady, nearly dry.
    "bass": PartProfile(
        gain_db=-2.0,
        pan=0.0,
        highpass_hz=35.0,
        eq=(("low_shelf", 120.0, 1.5, 0.7), ("high_shelf", 4000.0, -3.0, 0.7)),
        compressor=(-24.0, 4.0, 15.0, 120.0),
        reverb_send=0.05,
    ),
    # Drums: behind the tune, transients kept (fast release), a short room.
    "drums": PartProfile(
        gain_db=-4.0,
        pan=0.0,
        highpass_hz=40.0,
        eq=(("peak", 400.0, -2.0, 1.0),),
        compressor=(-20.0, 3.0, 5.0, 80.0),
        reverb_send=0.1,
    ),
    # Pad (a planned piece's strings): a wash behind the band, off to the other side.
    "pad": PartProfile(
        gain_db=-7.0,
        pan=0.3,
        highpass_hz=150.0,
        eq=(("peak", 300.0, -3.0, 1.0), ("high_shelf", 7000.0, -3.0, 0.7)),
        compressor=None,  # a sustained wash has no peaks to catch
        reverb_send=0.4,
    ),
    # Colour (a contrasting section's own accompaniment, a layer in the last return): like
    # the chords, on the pad's side of the stage, its low mids cut to leave the tune room.
    "colour": PartProfile(
        gain_db=-5.0,
        pan=0.35,
        highpass_hz=120.0,
        eq=(("peak", 350.0, -2.5, 1.0), ("high_shelf", 6000.0, -2.0, 0.7)),
        compressor=(-26.0, 2.0, 20.0, 200.0),
        reverb_send=0.3,
    ),
}
"""Mix profiles of the parts the arrangement makes (four, and the pad and colour of a piece
with a form plan); other names get ``PartProfile()``."""

VOCALS_PROFILE = PartProfile(
    gain_db=-12.0,
    pan=0.0,
    highpass_hz=110.0,
    eq=(("peak", 320.0, -2.0, 1.2), ("peak", 3200.0, 3.0, 0.9), ("high_shelf", 9000.0, -2.0, 0.7)),
    compressor=(-10.0, 2.5, 5.0, 120.0),
    reverb_send=0.25,
)
"""The sung lead (``cantus.render.vocals``), a few LU over the band: centred, low rumble and
mud cut, presence where consonants and vowel formants are heard, the eSpeak voice's hiss
tamed. Its syllables come evenly levelled, so the compressor only catches peaks. At +3 dB
the voice through this chain stood 15-22 LU over the rest of the band and 16-18 LU over the
tune's instrument (``cantus eval vocals``, "the voice over ..."): the band was all but gone
under it. At -12 dB it leads by a singer's margin. A hotter voice or a firmer compressor
also flattened the sections' planned dynamics the voice sings (the bus's glue compressor
took the rest), and the streaming master then missed its loudness."""

WARM_VOCALS_EQ = (
    ("peak", 320.0, -2.0, 1.2),
    ("peak", 2800.0, 1.5, 0.9),
    ("high_shelf", 7000.0, -3.5, 0.7),
)
"""The voice's EQ in the slow, dark-roomed palettes: half the presence lift and a darker
top, so the voice sits in their warm hall as their instruments do instead of standing out
bright and close as it should over a band."""

VOCALS_EQ = {
    "chorale": WARM_VOCALS_EQ,
    "ambient": WARM_VOCALS_EQ,
    "lullaby": WARM_VOCALS_EQ,
    "therapy": WARM_VOCALS_EQ,
}
"""The voice's EQ per palette (others: ``VOCALS_PROFILE.eq``, presence for a band)."""

VOICE_ROOM_DIP = ("peak", 3000.0, -2.0, 0.9)
"""A dip added to the accompaniment's EQ (chords, pad, colour) when the voice sings, where
its consonants and upper formants are heard: the room the palette's own dip keeps for the
melody instrument, kept for the lead that now carries the tune."""

VOCAL_REVERB_SENDS = {"chorale": 0.4, "ambient": 0.45, "lullaby": 0.4, "therapy": 0.4}
"""Reverb send of the vocals per palette (others 0.25): a hall for the slow, sustained
palettes, a shorter sense of room for the bands."""

MELODY_UNDER_VOCALS_DB = -9.0
"""The melody instrument's gain change when the vocals sing its tune: it doubles them softly."""


@dataclass(frozen=True)
class PaletteMix:
    """How a palette is mixed, on top of ``PART_PROFILES``: where each part stands
    (``pan``, -1 left to +1 right, as the players of that band would sit), a gain change
    per part (dB), the EQ of its accompaniment (``accompaniment_eq`` replaces the chords',
    pad's and colour's: a dip where this palette's melody instrument speaks), the room
    (pedalboard ``Reverb`` settings), a factor on every part's reverb send and the parts'
    stereo ``width`` (``PartProfile.width``)."""

    pan: Mapping[str, float]
    room: Mapping[str, float]
    send_scale: float = 1.0
    gain_db: Mapping[str, float] = field(default_factory=dict)
    accompaniment_eq: tuple[tuple[str, float, float, float], ...] | None = None
    width: Mapping[str, float] = field(default_factory=dict)


_BAND_ROOM = {"room_size": 0.45, "damping": 0.55, "width": 0.9}
_CONCERT_HALL = {"room_size": 0.75, "damping": 0.45, "width": 1.0}
_CHURCH = {"room_size": 0.88, "damping": 0.35, "width": 1.0}
_WARM_HALL = {"room_size": 0.82, "damping": 0.65, "width": 1.0}


def _dip(hz: float, db: float = -3.0) -> tuple[tuple[str, float, float, float], ...]:
    """Accompaniment EQ: the mud cut and a dip at ``hz`` where the melody speaks."""
    return (("peak", 350.0, -2.5, 1.0), ("peak", hz, db, 0.8))


PALETTE_MIXES: dict[str, PaletteMix] = {
    # A folk band on a small stage: flute just right of centre, guitar left, the bridge's
    # accordion and the strings right.
    "folk": PaletteMix(
        pan={"melody": 0.1, "chords": -0.4, "bass": 0.0, "pad": 0.35, "colour": 0.3},
        room=_BAND_ROOM,
        send_scale=0.8,
        accompaniment_eq=_dip(2000.0),
    ),
    # A session in a pub: fiddle centre-right, guitar left, accordion right, harp left in
    # the bridge, the frame drum a little left; a short, lively room.
    "celtic": PaletteMix(
        pan={
            "melody": 0.1,
            "chords": -0.4,
            "bass": 0.0,
            "pad": 0.4,
            "colour": -0.3,
            "drums": -0.2,
        },
        room=_BAND_ROOM,
        send_scale=0.7,
        accompaniment_eq=_dip(2500.0),
    ),
    # Choir in the middle, organ wide behind it, a long church.
    "chorale": PaletteMix(
        pan={"melody": 0.0, "chords": -0.2, "bass": 0.1, "pad": 0.4, "colour": -0.4},
        room=_CHURCH,
        send_scale=1.3,
        accompaniment_eq=_dip(1200.0),
    ),
    # A piano heard from the hall: treble a little right, bass a little left.
    "piano": PaletteMix(
        pan={"melody": 0.15, "chords": -0.05, "bass": -0.2, "pad": 0.0, "colour": 0.05},
        room=_CONCERT_HALL,
        send_scale=1.1,
    ),
    # Piano in front, the strings' violins left and cellos right, as an orchestra sits.
    "piano-strings": PaletteMix(
        pan={"melody": 0.05, "chords": -0.1, "bass": 0.35, "pad": -0.45, "colour": 0.4},
        room=_CONCERT_HALL,
        send_scale=1.2,
        gain_db={"pad": -1.5},
        accompaniment_eq=_dip(1500.0),
    ),
    # A string orchestra: violin lead left of centre, the section across, cellos right.
    "strings": PaletteMix(
        pan={"melody": -0.15, "chords": 0.15, "bass": 0.45, "pad": -0.45, "colour": 0.3},
        room=_CONCERT_HALL,
        send_scale=1.2,
        accompaniment_eq=_dip(2500.0),
    ),
    # Flute right of centre, harp left, cello right, strings behind.
    "harp-flute": PaletteMix(
        pan={"melody": 0.15, "chords": -0.4, "bass": 0.35, "pad": -0.2, "colour": 0.35},
        room=_CONCERT_HALL,
        send_scale=1.1,
        accompaniment_eq=_dip(1800.0),
    ),
    # A soft space: piano in the middle, pads to either side, a long tail. FluidR3's piano
    # and pads are stereo samples already, and spread wide in a wide hall their mix came
    # out wider than mono-safe (left-right correlation -0.11, more side than mid energy):
    # their own width is narrowed, the pans and the hall's width drawn in.
    "ambient": PaletteMix(
        pan={"melody": 0.0, "chords": -0.3, "bass": 0.15, "pad": 0.3, "colour": -0.25},
        room={**_WARM_HALL, "width": 0.6},
        send_scale=1.2,
        gain_db={"chords": -1.5, "pad": -1.5},
        accompaniment_eq=_dip(1200.0, -4.0),
        width={"melody": 0.6, "chords": 0.5, "pad": 0.4, "colour": 0.5, "bass": 0.5},
    ),
    # A music box close to the middle, harp left, pad right, a warm (dark) room.
    "lullaby": PaletteMix(
        pan={"melody": 0.05, "chords": -0.35, "bass": 0.25, "pad": 0.4, "colour": -0.3},
        room=_WARM_HALL,
        send_scale=1.2,
        gain_db={"pad": -2.0},
        accompaniment_eq=_dip(2500.0, -4.0),
    ),
    # Pan flute in the middle, strings left, pad right, guitar left in the bridge.
    "therapy": PaletteMix(
        pan={"melody": 0.0, "chords": -0.4, "bass": 0.2, "pad": 0.45, "colour": -0.35},
        room=_WARM_HALL,
        send_scale=1.2,
        accompaniment_eq=_dip(1500.0),
    ),
}
"""The mix of every palette (``cantus.render.palettes.PALETTES``)."""

_ACCOMPANIMENTS = ("chords", "pad", "colour")


def palette_profiles(palette: str | None) -> dict[str, PartProfile]:
    """``PART_PROFILES`` placed, levelled and EQ'd for ``palette`` (unchanged for None or
    a palette without a mix)."""
    mix = PALETTE_MIXES.get(palette or "")
    if mix is None:
        return dict(PART_PROFILES)
    out = {}
    for name, profile in PART_PROFILES.items():
        eq = profile.eq
        if mix.accompaniment_eq is not None and name in _ACCOMPANIMENTS:
            eq = mix.accompaniment_eq
        out[name] = replace(
            profile,
            pan=mix.pan.get(name, profile.pan),
            gain_db=profile.gain_db + mix.gain_db.get(name, 0.0),
            reverb_send=min(1.0, profile.reverb_send * mix.send_scale),
            eq=eq,
            width=mix.width.get(name, profile.width),
        )
    return out


def palette_reverb(palette: str | None) -> dict[str, float]:
    """The reverb settings (pedalboard ``Reverb``) of ``palette`` (``REVERB`` for None)."""
    mix = PALETTE_MIXES.get(palette or "")
    return dict(mix.room) if mix is not None else dict(REVERB)


def vocal_profiles(palette: str) -> dict[str, PartProfile]:
    """``palette_profiles`` for a piece with vocals in ``palette``: the vocals as the lead,
    with the palette's EQ and reverb send (``VOCALS_EQ``, ``VOCAL_REVERB_SENDS``), room made
    for them in the accompaniment (``VOICE_ROOM_DIP``), the melody instrument stepped back and
    with more reverb, so it doubles the voice from behind."""
    profiles = palette_profiles(palette)
    melody = profiles["melody"]
    accompaniment = {
        name: replace(profiles[name], eq=(*profiles[name].eq, VOICE_ROOM_DIP))
        for name in _ACCOMPANIMENTS
        if name in profiles
    }
    return {
        **profiles,
        **accompaniment,
        "melody": replace(
            melody,
            gain_db=melody.gain_db + MELODY_UNDER_VOCALS_DB,
            pan=-0.2,
            reverb_send=melody.reverb_send + 0.1,
        ),
        "vocals": replace(
            VOCALS_PROFILE,
            eq=VOCALS_EQ.get(palette, VOCALS_PROFILE.eq),
            reverb_send=VOCAL_REVERB_SENDS.get(palette, 0.25),
        ),
    }


BUS_COMPRESSOR = (-22.0, 2.0, 20.0, 200.0)
"""Glue compressor on the mix bus: threshold dBFS, ratio, attack ms, release ms."""

REVERB = {"room_size": 0.55, "damping": 0.5, "width": 1.0}
"""The shared reverb (pedalboard ``Reverb``), fed by each part's ``reverb_send``."""


@dataclass(frozen=True)
class MasterResult:
    """A mastered piece: float32 ``[samples, 2]`` audio, its integrated loudness (LUFS),
    true peak (dBTP, 4x oversampled) and the master gain that was applied (dB)."""

    audio: np.ndarray
    sample_rate: int
    integrated_lufs: float
    true_peak_dbtp: float
    gain_db: float
    preset: str


# --- measurement ------------------------------------------------------------------------


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness of ``[samples, channels]`` audio, LUFS
    (``-inf`` for silence or audio shorter than one 400 ms gating block)."""
    if len(audio) < int(0.4 * sample_rate) + 1:
        return -math.inf
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio.astype(np.float64)))


def true_peak_dbtp(audio: np.ndarray, sample_rate: int) -> float:
    """True peak of ``[samples, channels]`` audio: the largest absolute value of the signal
    oversampled 4x (a 48-tap polyphase interpolator, 12 taps a phase, like the one
    ITU-R BS.1770-4 Annex 2 describes), in dBTP. ``sample_rate`` only documents the input."""
    del sample_rate  # the oversampling factor, not the rate, sets the measurement
    if audio.size == 0:
        return -math.inf
    oversampled = upfirdn(_TRUE_PEAK_FIR, audio.astype(np.float32), TRUE_PEAK_OVERSAMPLING, axis=0)
    peak = float(np.abs(oversampled).max())
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def block_powers(sub_block_powers: np.ndarray) -> np.ndarray:
    """The mean powers of the 400 ms blocks (four 100 ms sub-blocks) every 100 ms: momentary
    loudness is ``-0.691 + 10 log10`` of each."""
    return np.lib.stride_tricks.sliding_window_view(np.asarray(sub_block_powers), 4).mean(axis=1)


def gated_loudness(sub_block_powers: np.ndarray) -> float:
    """BS.1770 integrated loudness (LUFS) from the K-weighted mean-square powers of
    consecutive 100 ms sub-blocks (summed over channels): 400 ms gating blocks every
    100 ms, absolute gate -70 LUFS, relative gate -10 LU; ``-inf`` if nothing passes."""
    if len(sub_block_powers) < 4:
        return -math.inf
    powers = block_powers(sub_block_powers)
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10.0 * np.log10(powers)
    above_absolute = loudness >= -70.0
    if not above_absolute.any():
        return -math.inf
    relative_gate = -0.691 + 10.0 * math.log10(powers[above_absolute].mean()) - 10.0
    gated = powers[above_absolute & (loudness > relative_gate)]
    return -0.691 + 10.0 * math.log10(gated.mean())


class LoudnessMeter:
    """Running BS.1770 integrated loudness of a stereo stream, with the same K-weighting
    filters as pyloudnorm. ``add`` audio in any chunk sizes; read ``integrated_lufs`` or
    the 100 ms ``sub_block_powers`` any time."""

    def __init__(self, sample_rate: int) -> None:
        stages = pyloudnorm.Meter(sample_rate)._filters.values()  # K-weighting biquads
        self._filters = [(s.passband_gain, s.b, s.a) for s in stages]
        self._states: list[np.ndarray | None] = [None] * len(self._filters)
        self.step = round(0.1 * sample_rate)
        """Samples per 100 ms sub-block."""
        self._partial = np.zeros((0, 2))
        self.sub_block_powers: list[float] = []
        """K-weighted mean square (summed over channels) of each complete 100 ms."""

    def add(self, audio: np.ndarray) -> None:
        """Feed float ``[samples, 2]`` audio."""
        weighted = audio.astype(np.float64)
        for index, (gain, b, a) in enumerate(self._filters):
            state = self._states[index]
            if state is None:
                state = np.zeros((max(len(a), len(b)) - 1, weighted.shape[1]))
            weighted, self._states[index] = lfilter(b, a, weighted, axis=0, zi=state)
            weighted = gain * weighted
        pending = np.concatenate([self._partial, weighted])
        whole = len(pending) // self.step * self.step
        if whole:
            squares = (pending[:whole] ** 2).reshape(-1, self.step, pending.shape[1])
            self.sub_block_powers.extend(squares.mean(axis=1).sum(axis=1).tolist())
        self._partial = pending[whole:]

    @property
    def integrated_lufs(self) -> float:
        """Gated integrated loudness so far, LUFS; ``-inf`` before the first 400 ms or
        while everything is below the absolute gate."""
        return gated_loudness(np.array(self.sub_block_powers))


# --- mixing -----------------------------------------------------------------------------


def _prepared(board: pb.Pedalboard, sample_rate: int) -> pb.Pedalboard:
    """Prepare ``board`` for its largest block once, then clear it. pedalboard re-prepares
    (and so clears filter and reverb state) whenever a call is longer than any before,
    which would make a segmented run differ from a one-shot run."""
    board.process(np.zeros((2, _PREPARE_SAMPLES), np.float32), sample_rate, reset=True)
    board.reset()
    return board


def _run(board: pb.Pedalboard, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Process ``[samples, 2]`` through ``board`` keeping its state; ``[samples', 2]`` back."""
    planar = np.ascontiguousarray(audio.T, dtype=np.float32)
    return board.process(planar, sample_rate, reset=False).T


def _part_board(profile: PartProfile, sample_rate: int) -> pb.Pedalboard:
    plugins: list[pb.Plugin] = []  # the part's gain is applied with its pan (_pan_gains)
    if profile.highpass_hz:
        plugins.append(pb.HighpassFilter(profile.highpass_hz))
    for kind, frequency, gain_db, q in profile.eq:
        if kind == "peak":
            plugins.append(pb.PeakFilter(frequency, gain_db, q))
        elif kind == "low_shelf":
            plugins.append(pb.LowShelfFilter(frequency, gain_db, q))
        elif kind == "high_shelf":
            plugins.append(pb.HighShelfFilter(frequency, gain_db, q))
        else:
            raise ValueError(f"unknown EQ kind {kind!r}")
    if profile.compressor:
        threshold, ratio, attack, release = profile.compressor
        plugins.append(pb.Compressor(threshold, ratio, attack, release))
    return _prepared(pb.Pedalboard(plugins), sample_rate)


def _pan_gains(pan: float, gain_db: float) -> np.ndarray:
    """Left and right gains: ``gain_db`` and a constant-power pan law (unity in the centre)."""
    angle = (max(-1.0, min(1.0, pan)) + 1.0) * math.pi / 4.0
    gains = np.array([math.cos(angle), math.sin(angle)]) * math.sqrt(2.0) * _db_to_gain(gain_db)
    return gains.astype(np.float32)


class Mixer:
    """Stems to a stereo mix bus, keeping every processor's state between calls so that
    mixing a piece in segments equals mixing it at once. A part missing from a call is
    fed silence (its reverb and compressor run on); a new part gets its chain then.

    pedalboard cannot tell channels from samples in an array of 1 or 2 samples, so a
    call with fewer than ``MIN_BLOCK_SAMPLES`` in all is held back and mixed with the
    next (that call returns fewer samples, the next more); ``flush`` mixes what is left."""

    MIN_BLOCK_SAMPLES = 3

    def __init__(
        self,
        sample_rate: int,
        profiles: Mapping[str, PartProfile] | None = None,
        reverb: Mapping[str, float] | None = None,
    ):
        self.sample_rate = sample_rate
        self.profiles = dict(PART_PROFILES if profiles is None else profiles)
        self._parts: dict[str, tuple[pb.Pedalboard, np.ndarray, float, float]] = {}
        room = dict(REVERB if reverb is None else reverb)
        self._reverb = _prepared(
            pb.Pedalboard([pb.Reverb(**room, wet_level=1.0, dry_level=0.0)]), sample_rate
        )
        threshold, ratio, attack, release = BUS_COMPRESSOR
        self._bus = _prepared(
            pb.Pedalboard([pb.Compressor(threshold, ratio, attack, release)]), sample_rate
        )
        self._held: dict[str, np.ndarray] = {}
        self._held_samples = 0
        self._sounded: set[str] = set()

    def _part(self, name: str) -> tuple[pb.Pedalboard, np.ndarray, float, float]:
        if name not in self._parts:
            profile = self.profiles.get(name, PartProfile())
            self._parts[name] = (
                _part_board(profile, self.sample_rate),
                _pan_gains(profile.pan, profile.gain_db),
                profile.reverb_send,
                profile.width,
            )
        return self._parts[name]

    def _mix(self, stems: Mapping[str, np.ndarray], length: int) -> np.ndarray:
        # Planar (``[2, samples]``, what pedalboard takes) throughout: a stem that is a
        # transposed view of the synth's planar buffer is then processed without a copy.
        dry = np.zeros((2, length), dtype=np.float32)
        send = np.zeros((2, length), dtype=np.float32)
        for name in sorted(stems):  # a fixed order: float sums then do not depend on dicts
            if name not in self._sounded:
                # A part that has not yet sounded (drums of a palette without them, a
                # bridge's colour before the bridge) would come out of its chain as exact
                # zeros: skip the work until its first sound, in segments as at once.
                if not stems[name].any():
                    continue
                self._sounded.add(name)
            board, pan, reverb_send, width = self._part(name)
            planar = np.ascontiguousarray(stems[name].T, dtype=np.float32)
            treated = board.process(planar, self.sample_rate, reset=False)
            if width != 1.0:  # mid + width x side: L, R = m + w s, m - w s
                mid = (treated[0] + treated[1]) * np.float32(0.5)
                side = (treated[0] - treated[1]) * np.float32(0.5 * width)
                treated[0] = mid + side
                treated[1] = mid - side
            treated *= pan[:, None]
            dry += treated
            if reverb_send:
                treated *= np.float32(reverb_send)
                send += treated
        wet = self._reverb.process(send, self.sample_rate, reset=False)
        dry += wet
        return self._bus.process(dry, self.sample_rate, reset=False).T

    def process(self, stems: Mapping[str, np.ndarray]) -> np.ndarray:
        """Mix one segment of stems (all the same length, float ``[samples, 2]``) to the
        bus: float32 ``[samples, 2]``."""
        lengths = {len(stem) for stem in stems.values()}
        if len(lengths) > 1:
            raise ValueError(f"stems of one segment differ in length: {sorted(lengths)} samples")
        length = lengths.pop() if lengths else 0
        total = self._held_samples + length
        names = set(stems) | set(self._parts) | set(self._held)
        if not self._held_samples and total >= self.MIN_BLOCK_SAMPLES:
            silence = np.zeros((length, 2), np.float32)
            return self._mix({name: stems.get(name, silence) for name in names}, total)
        silence = np.zeros((length, 2), np.float32)
        held_silence = np.zeros((self._held_samples, 2), np.float32)
        merged = {
            name: np.concatenate(
                [self._held.get(name, held_silence), stems.get(name, silence)]
            ).astype(np.float32)
            for name in names
        }
        if total < self.MIN_BLOCK_SAMPLES:
            self._held, self._held_samples = merged, total
            return np.zeros((0, 2), np.float32)
        self._held, self._held_samples = {}, 0
        return self._mix(merged, total)

    def flush(self) -> np.ndarray:
        """Mix what ``process`` held back (padded with silence to a mixable length)."""
        held = self._held_samples
        if not held:
            return np.zeros((0, 2), np.float32)
        pad = np.zeros((self.MIN_BLOCK_SAMPLES - held, 2), np.float32)
        padded = {name: np.concatenate([stem, pad]) for name, stem in self._held.items()}
        self._held, self._held_samples = {}, 0
        return self._mix(padded, self.MIN_BLOCK_SAMPLES)[:held]


def mix_stems(
    stems: Mapping[str, np.ndarray],
    sample_rate: int,
    profiles: Mapping[str, PartProfile] | None = None,
    palette: str | None = None,
) -> np.ndarray:
    """One-shot mix bus of a whole piece's stems (before the master gain and limiter), in
    ``palette``'s mix (``palette_profiles``, ``palette_reverb``) unless ``profiles`` say
    otherwise."""
    mixer = _palette_mixer(sample_rate, profiles, palette)
    return np.concatenate([mixer.process(stems), mixer.flush()])


def _palette_mixer(
    sample_rate: int, profiles: Mapping[str, PartProfile] | None, palette: str | None
) -> Mixer:
    chosen = palette_profiles(palette) if profiles is None else profiles
    return Mixer(sample_rate, chosen, palette_reverb(palette))


# --- true-peak limiting ------------------------------------------------------------------

_PHASE_TAPS = len(_TRUE_PEAK_FIR) // TRUE_PEAK_OVERSAMPLING
_PHASES = np.stack(
    [
        _TRUE_PEAK_FIR[phase::TRUE_PEAK_OVERSAMPLING][::-1]
        for phase in range(TRUE_PEAK_OVERSAMPLING)
    ],
    axis=1,
).astype(np.float32)
"""``[taps, phases]``: oversampled value ``4 n + phase`` of ``true_peak_dbtp``'s interpolator
is the window ``x[n - taps + 1 .. n]`` dotted with column ``phase``."""
_PHASE_GAIN = float(np.abs(_PHASES).sum(axis=0).max())
"""The most an interpolated value can exceed the largest sample of its window (the
largest L1 norm of a phase, 1.84, +5.3 dB): windows whose samples all lie under the
ceiling divided by this cannot reach it, and are not interpolated."""
_GUARD_BLOCK = 64
"""Frames per block of the guard's cheap test (a block's largest sample)."""


class TruePeakGuard:
    """Keeps the true peak of a stream (``true_peak_dbtp``: the same 4x interpolator) at
    or under ``ceiling`` (linear), after a sample-peak limiter has done the real work.

    Only windows that could reach the ceiling are interpolated (blocks whose largest
    sample is over ``ceiling / _PHASE_GAIN``; under a sample-peak limiter a few per cent of
    the music at most). An interpolated value over the ceiling gets a short raised-cosine
    gain dip, ``DIP_SAMPLES`` each side, on both channels (the image stays put), deep
    enough to bring it to ``DIP_TARGET`` of the ceiling; the windows are checked again
    until none is over. The interpolator is causal (value ``n`` reads samples up to ``n``)
    and the guard holds back ``DIP_SAMPLES + taps`` samples, so a dip never reaches audio
    already handed out; the part of a dip past the newest sample waits for the samples it
    belongs to. ``flush`` hands out the rest (the interpolator's tail over trailing zeros
    checked too, as ``true_peak_dbtp`` reads it)."""

    DIP_SAMPLES = 96
    DIP_TARGET = 0.995
    MAX_PASSES = 8

    def __init__(self, ceiling_dbtp: float) -> None:
        self.ceiling = float(10.0 ** (ceiling_dbtp / 20.0))
        self._hot = np.float32(self.ceiling / _PHASE_GAIN)
        self._buffer = np.zeros((_PHASE_TAPS - 1, 2), np.float32)
        """The last ``taps - 1`` samples handed out (the interpolator's history), then the
        samples held."""
        self._ahead = np.ones(self.DIP_SAMPLES + 1, np.float32)
        """Gain of the next samples to arrive (the tails of dips already decided)."""
        self.dips = 0
        """Interpolated values found over the ceiling (and dipped) so far."""
        shape = np.arange(-self.DIP_SAMPLES, self.DIP_SAMPLES + 1) / self.DIP_SAMPLES
        self._shape = (0.5 * (1.0 + np.cos(np.pi * shape))).astype(np.float32)

    @property
    def latency(self) -> int:
        """Samples the guard holds back."""
        return self.DIP_SAMPLES + _PHASE_TAPS

    @property
    def _held(self) -> int:
        return len(self._buffer) - (_PHASE_TAPS - 1)

    def _overs(self, extended: np.ndarray) -> list[tuple[int, float]]:
        """(window end in ``extended``, largest interpolated magnitude) of every value over
        the ceiling whose window ends in ``extended[taps - 1:]``."""
        if len(extended) < _PHASE_TAPS:
            return []
        if max(float(extended.max()), -float(extended.min())) <= self._hot:
            return []  # the common case: no sample near the ceiling
        blocks = -(-len(extended) // _GUARD_BLOCK)
        padded = np.zeros((blocks * _GUARD_BLOCK, 2), np.float32)
        padded[: len(extended)] = extended
        per_block = padded.reshape(blocks, -1)
        loud = np.maximum(per_block.max(axis=1), -per_block.min(axis=1)) > self._hot
        # a window ends at most taps - 1 samples after its loud sample: the next block too
        loud[1:] |= loud[:-1].copy()
        ends = (np.flatnonzero(loud)[:, None] * _GUARD_BLOCK + np.arange(_GUARD_BLOCK)).ravel()
        ends = ends[(ends >= _PHASE_TAPS - 1) & (ends < len(extended))]
        if not len(ends):
            return []
        windows = np.lib.stride_tricks.sliding_window_view(extended, _PHASE_TAPS, axis=0)
        values = windows[ends - (_PHASE_TAPS - 1)] @ _PHASES  # [ends, channels, phases]
        peaks = np.abs(values).max(axis=(1, 2))
        over = peaks > self.ceiling
        return list(zip(ends[over].tolist(), peaks[over].tolist(), strict=True))

    def _guard(self, tail_zeros: int = 0) -> None:
        """Dip the held samples until no window ending in them (or in ``tail_zeros`` zeros
        after them) interpolates over the ceiling."""
        history = _PHASE_TAPS - 1
        for _ in range(self.MAX_PASSES):
            extended = self._buffer
            if tail_zeros:
                extended = np.concatenate([self._buffer, np.zeros((tail_zeros, 2), np.float32)])
            overs = self._overs(extended)
            if not overs:
                return
            self.dips += len(overs)
            held = self._held
            gain = np.ones(held + len(self._ahead), np.float32)
            for end, peak in overs:
                # the window's centre: the interpolator's delay is half its taps
                centre = end - history - _PHASE_TAPS // 2
                depth = 1.0 - self.DIP_TARGET * self.ceiling / peak
                first = centre - self.DIP_SAMPLES
                low, high = max(0, first), min(len(gain), centre + self.DIP_SAMPLES + 1)
                if high <= low:
                    continue
                dip = 1.0 - depth * self._shape[low - first : high - first]
                np.minimum(gain[low:high], dip, out=gain[low:high])
            self._buffer[history:] *= gain[:held, None]
            self._ahead *= gain[held:]
        # Not settled after MAX_PASSES (never seen): scale what is held under the ceiling.
        extended = np.concatenate([self._buffer, np.zeros((tail_zeros, 2), np.float32)])
        overs = self._overs(extended)
        if overs:
            scale = self.DIP_TARGET * self.ceiling / max(peak for _, peak in overs)
            self._buffer[history:] *= np.float32(scale)

    def _take(self, audio: np.ndarray) -> None:
        start = len(self._buffer)
        self._buffer = np.concatenate([self._buffer, audio.astype(np.float32, copy=False)])
        ahead = min(len(audio), len(self._ahead))
        self._buffer[start : start + ahead] *= self._ahead[:ahead, None]
        self._ahead = np.concatenate([self._ahead[ahead:], np.ones(ahead, np.float32)])

    def _hand_out(self, count: int) -> np.ndarray:
        history = _PHASE_TAPS - 1
        out = self._buffer[history : history + count]
        self._buffer = self._buffer[count:]  # its first taps - 1: the last handed out
        return out

    def process(self, audio: np.ndarray) -> np.ndarray:
        """Take float ``[samples, 2]`` audio; hand back what is settled (``latency``
        samples behind)."""
        self._take(audio)
        self._guard()
        return self._hand_out(max(0, self._held - self.latency))

    def flush(self) -> np.ndarray:
        """Hand back everything still held."""
        self._guard(tail_zeros=_PHASE_TAPS - 1)
        return self._hand_out(self._held)

    def apply(self, audio: np.ndarray) -> np.ndarray:
        """The whole of ``audio`` guarded at once, as long as it (a fresh guard's use)."""
        return np.concatenate([self.process(audio), self.flush()])


class TruePeakLimiter:
    """The master's limiter: pedalboard's lookahead brick-wall limiter on sample peaks, its
    ceiling ``LIMITER_MARGIN_DB`` under the preset's true-peak ceiling, then a
    ``TruePeakGuard`` that keeps the true peak under ``GUARD_MARGIN_DB`` below it. (The
    limiter's own 4x-oversampled detection cost 8 ms of CPU per second of audio, a sixth
    of the whole streamed render, and still did not guarantee the ceiling.)

    ``process`` keeps every state between calls (a stream), output delayed by the
    limiter's lookahead and the guard's hold; ``flush`` hands out the rest, so the outputs
    add up to the input's length. ``apply`` limits a whole piece at once (no delay)."""

    def __init__(self, preset: MasterPreset, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._ceiling_dbtp = preset.ceiling_dbtp - GUARD_MARGIN_DB
        self._board = _prepared(
            pb.Pedalboard(
                [
                    pb.BrickwallLimiter(
                        ceiling_db=preset.ceiling_dbtp - LIMITER_MARGIN_DB,
                        release_ms=120.0,
                        lookahead_ms=5.0,
                        true_peak=False,
                    )
                ]
            ),
            sample_rate,
        )
        self.guard = TruePeakGuard(self._ceiling_dbtp)
        self._fed = 0
        self._limited = 0

    def process(self, audio: np.ndarray) -> np.ndarray:
        """Limit the next ``[samples, 2]`` of the stream; the settled output back."""
        limited = _run(self._board, audio, self.sample_rate)
        self._fed += len(audio)
        self._limited += len(limited)
        return self.guard.process(limited)

    def flush(self) -> np.ndarray:
        """The rest of the stream: the limiter's lookahead, then the guard's hold."""
        chunks = []
        silence = np.zeros((_PREPARE_SAMPLES, 2), np.float32)
        while self._limited < self._fed:
            chunk = _run(self._board, silence, self.sample_rate)[: self._fed - self._limited]
            self._limited += len(chunk)
            chunks.append(self.guard.process(chunk))
        chunks.append(self.guard.flush())
        return np.concatenate(chunks)

    def apply(self, audio: np.ndarray) -> np.ndarray:
        """A whole piece limited at once (fresh state; as long as ``audio``)."""
        planar = np.ascontiguousarray(audio.T, dtype=np.float32)
        limited = self._board.process(planar, self.sample_rate, reset=True).T
        self.guard = TruePeakGuard(self._ceiling_dbtp)
        return self.guard.apply(limited)


def _preset(preset: str | MasterPreset) -> MasterPreset:
    if isinstance(preset, MasterPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown mastering preset {preset!r}: expected one of {sorted(PRESETS)}")
    return PRESETS[preset]


def _db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


# --- offline mastering ------------------------------------------------------------------


def master(
    stems: Mapping[str, np.ndarray],
    sample_rate: int,
    preset: str | MasterPreset = DEFAULT_PRESET,
    *,
    max_passes: int = 4,
    profiles: Mapping[str, PartProfile] | None = None,
    palette: str | None = None,
) -> MasterResult:
    """Mix and master a whole piece to ``preset`` (``streaming`` or ``broadcast``).

    The gain starts from the bus loudness; each pass limits, measures the output and
    corrects the gain by the remaining error (the limiter takes off a little loudness
    when it works), until within ``LOUDNESS_TOLERANCE_LU`` or ``max_passes`` are done."""
    chosen = _preset(preset)
    bus = mix_stems(stems, sample_rate, profiles, palette)
    bus_lufs = integrated_loudness(bus, sample_rate)
    if not math.isfinite(bus_lufs):  # silence, or under 400 ms: nothing to normalise
        gain_db = chosen.target_lufs - TYPICAL_BUS_LUFS
        audio = bus * np.float32(_db_to_gain(gain_db))
        return MasterResult(
            audio,
            sample_rate,
            integrated_loudness(audio, sample_rate),
            true_peak_dbtp(audio, sample_rate),
            gain_db,
            chosen.name,
        )
    gain_db = chosen.target_lufs - bus_lufs
    limiter = TruePeakLimiter(chosen, sample_rate)
    for _ in range(max_passes):
        # A one-shot call compensates the lookahead: output as long as input.
        audio = limiter.apply(bus * np.float32(_db_to_gain(gain_db)))
        lufs = integrated_loudness(audio, sample_rate)
        error = chosen.target_lufs - lufs
        if abs(error) <= LOUDNESS_TOLERANCE_LU:
            break
        gain_db += error
    return MasterResult(
        np.ascontiguousarray(audio),
        sample_rate,
        lufs,
        true_peak_dbtp(audio, sample_rate),
        gain_db,
        chosen.name,
    )


# --- streaming mastering ----------------------------------------------------------------


@dataclass
class GainRamp:
    """The master gain across one segment of input samples ``[first_sample, first_sample +
    samples)``: from ``start_db`` to ``end_db`` (dB), linear in dB over the first
    ``ramp_samples``, then constant."""

    first_sample: int
    samples: int
    start_db: float
    end_db: float
    ramp_samples: int

    ride_offsets: np.ndarray | None = None
    ride_db: np.ndarray | None = None
    """The swell ride (``StreamingMaster._ride``): dB (zero or less) added to the ramp at
    sample offsets ``ride_offsets`` from ``first_sample``, linear in between; None: none."""

    def db_at(self, offsets: np.ndarray) -> np.ndarray:
        """The gain (dB) at sample ``offsets`` from ``first_sample``."""
        position = np.clip((offsets + 1) / max(self.ramp_samples, 1), 0.0, 1.0)
        gain_db = self.start_db + (self.end_db - self.start_db) * position
        if self.ride_db is not None and self.ride_offsets is not None:
            gain_db = gain_db + np.interp(offsets, self.ride_offsets, self.ride_db)
        return gain_db

    def gains(self) -> np.ndarray:
        """Linear gain of each sample of the segment."""
        return 10.0 ** (self.db_at(np.arange(self.samples, dtype=np.float64)) / 20.0)


@dataclass
class StreamingMaster:
    """Mix and master a piece segment by segment (see the module docstring).

    ``process(stems)`` takes one segment's stems and returns the mastered audio available
    so far (the limiter's lookahead delays it by a few milliseconds, so the first call
    returns that much less); ``finish(tail_stems)`` takes the synth's release tail and
    returns the rest. Concatenated, the output is exactly as long as the input.

    Gain: the first segment gets the constant gain that brings it to the target. Each
    later segment gets the gain that puts the integrated loudness of everything so far,
    itself included, on the target (plus the loudness the limiter has taken off so far),
    but never further from the target for the segment itself than its start gain leaves
    it (``_end_gain_db``),
    reached by a linear ramp in dB over the segment's first ``GAIN_RAMP_SECONDS`` and at
    most ``MAX_GAIN_STEP_DB`` away from the previous segment's; where that is not enough,
    up to 0.75 dB for each second of the segment (at most ``MAX_GAIN_STEP_LONG_DB``).
    The piece's ending (the final chord's hold past the last barline and its release, a
    segment of its own: ``process(..., ending_seconds=)``) may only bring the gain down;
    ``finish``'s tail keeps the last gain.

    Swells: within a segment, a momentary loudness more than ``SWELL_ALLOWANCE_LU`` over the
    95th percentile of what was heard so far (both less their planned levels) is ridden
    down by a ramp added to the gain (``_ride``), which the next segment releases.

    Planned dynamics: a segment may come with the ``level_db`` its arrangement is meant to
    sound at, relative to the piece as a whole (a thin intro under it, the last chorus over
    it; ``cantus.render.arrangement.segment_level_db``). The gain is then found for the
    audio as if each segment were ``level_db`` quieter, so it does not chase those
    differences: the intro is not pushed up to the target nor the climax pulled down, and
    the piece still lands near the target on average. ``level_db`` 0 everywhere (the
    default) masters exactly as without it."""

    sample_rate: int = 44100
    preset: str | MasterPreset = DEFAULT_PRESET
    max_step_db: float = MAX_GAIN_STEP_DB
    ramp_seconds: float = GAIN_RAMP_SECONDS
    ramps: list[GainRamp] = field(default_factory=list)
    profiles: Mapping[str, PartProfile] | None = None
    """The parts' mix profiles (``palette_profiles`` when None; ``vocal_profiles`` with
    vocals)."""
    palette: str | None = None
    """The palette whose mix (placement, room) this is; None: ``PART_PROFILES``, ``REVERB``."""

    def __post_init__(self) -> None:
        self._preset = _preset(self.preset)
        self._mixer = _palette_mixer(self.sample_rate, self.profiles, self.palette)
        self._limiter = TruePeakLimiter(self._preset, self.sample_rate)
        self._bus_meter = LoudnessMeter(self.sample_rate)
        self._output_meter = LoudnessMeter(self.sample_rate)
        self._gained_powers: list[float] = []
        """The gained audio's 100 ms powers: the bus meter's, times the gain's square at
        each sub-block's middle (K-weighting is linear and the gain moves over seconds, so
        a meter of its own on the gained audio read the same within 0.01 LU)."""
        self._gain_db: float | None = None
        self._reference_powers: list[float] = []
        """The gained audio's 100 ms powers, each less its segment's ``level_db``."""
        self._level_db = 0.0
        self._ride_end_db = 0.0
        """The swell ride where the last segment ended, dB (zero or less)."""
        self._samples_in = 0
        self._samples_out = 0
        self._finished = False

    @property
    def gain_db(self) -> float | None:
        """The master gain at the end of the last segment, dB (None before the first)."""
        return self._gain_db

    def _limiter_loss_db(self) -> float:
        """How much loudness the limiter has taken off so far, LU (0 until measurable)."""
        gained = gated_loudness(np.array(self._gained_powers))
        output = self._output_meter.integrated_lufs
        if math.isfinite(gained) and math.isfinite(output):
            return max(0.0, gained - output)
        return 0.0

    def _end_gain_db(
        self, ramp: GainRamp, new_powers: np.ndarray, max_step_db: float, *, rise: bool = True
    ) -> float:
        """The end gain (dB) of ``ramp`` that puts the integrated loudness of all gained
        audio so far on the goal, within ``max_step_db`` of its start, and not above it
        unless ``rise`` (bisection: more gain is always louder). ``new_powers`` are the
        segment's 100 ms bus powers (less its planned level).

        Never the wrong way for the segment itself: one that sounds under the goal at the
        start gain (less its planned level) keeps at least that gain, one over it at most.
        A past segment's excess is made up by later segments that have some to give, not by
        pushing a quiet passage further down: chasing the running integral alone, a loud
        statement took 2.5 dB off the quiet bridge after it, which then ran 4 LU under its
        plan and the piece landed 1.2 LU under the target (ambient's vibraphone bridge)."""
        goal = self._preset.target_lufs + self._limiter_loss_db()
        previous = np.array(self._reference_powers)
        centres = (np.arange(len(new_powers)) + 0.5) * ramp.samples / len(new_powers)
        position = np.minimum(centres / max(ramp.ramp_samples, 1), 1.0)

        def loudness(end_db: float) -> float:
            gains_db = ramp.start_db + (end_db - ramp.start_db) * position
            return gated_loudness(np.concatenate([previous, new_powers * 10.0 ** (gains_db / 10)]))

        low, high = ramp.start_db - max_step_db, ramp.start_db + (max_step_db if rise else 0.0)
        own = gated_loudness(new_powers * 10.0 ** (ramp.start_db / 10))
        if math.isfinite(own):
            if own < goal:
                low = ramp.start_db
            else:
                high = min(high, ramp.start_db)
        if not math.isfinite(loudness(high)) or loudness(high) <= goal:
            return high
        if loudness(low) >= goal:
            return low
        for _ in range(24):  # to under 0.001 dB
            middle = (low + high) / 2.0
            low, high = (middle, high) if loudness(middle) < goal else (low, middle)
        return (low + high) / 2.0

    def _gain_db_at(self, samples: np.ndarray) -> np.ndarray:
        """The master gain (dB) at input sample indices ``samples`` (within ``ramps``)."""
        firsts = np.array([ramp.first_sample for ramp in self.ramps])
        which = np.clip(np.searchsorted(firsts, samples, side="right") - 1, 0, None)
        out = np.empty(len(samples))
        for index in np.unique(which):
            ramp = self.ramps[index]
            chosen = which == index
            out[chosen] = ramp.db_at(samples[chosen] - ramp.first_sample)
        return out

    def _master(self, bus: np.ndarray, ramp: GainRamp) -> np.ndarray:
        gained = bus * ramp.gains()[:, None].astype(np.float32)
        if len(bus):
            self.ramps.append(ramp)
        powers = self._bus_meter.sub_block_powers[len(self._gained_powers) :]
        if powers and self.ramps:
            step = self._bus_meter.step
            middles = (np.arange(len(powers)) + len(self._gained_powers) + 0.5) * step
            gained_powers = np.array(powers) * 10.0 ** (self._gain_db_at(middles) / 10.0)
            self._gained_powers.extend(gained_powers.tolist())
            scale = 10.0 ** (-self._level_db / 10.0)
            self._reference_powers.extend((gained_powers * scale).tolist())
        output = self._limiter.process(gained)
        self._output_meter.add(output)
        self._samples_in += len(bus)
        self._samples_out += len(output)
        return np.ascontiguousarray(output)

    def process(
        self,
        stems: Mapping[str, np.ndarray],
        *,
        level_db: float = 0.0,
        ending_seconds: float | None = None,
    ) -> np.ndarray:
        """Master one segment of stems, planned to sound ``level_db`` relative to the whole
        piece (see the class docstring); float32 ``[samples, 2]`` of output back.

        ``ending_seconds``: the segment is the piece's ending, what sounds after the last
        barline: the final chord held that long, then its release. Its gain is ramped over
        the hold and may only come down: a chord that rings loud is brought down as it
        rings, like a fader on a held chord, and one that dies away (a piano's) is not
        pushed back up. (Mastered as ``finish``'s tail, at the last bar's gain, the held
        chord went unheard by the gain; a piano's dying one, mastered with its last bar,
        was met with 2 dB more gain.)"""
        if self._finished:
            raise RuntimeError("this StreamingMaster is finished")
        bus = self._mixer.process(stems)
        measured_before = len(self._bus_meter.sub_block_powers)
        self._bus_meter.add(bus)
        self._level_db = level_db
        scale = 10.0 ** (-level_db / 10.0)
        new_powers = np.array(self._bus_meter.sub_block_powers[measured_before:]) * scale
        ramp_samples = round(self.ramp_seconds * self.sample_rate)
        if ending_seconds is not None:
            ramp_samples = max(ramp_samples, round(ending_seconds * self.sample_rate))
        if self._gain_db is None:
            # Nothing heard yet: the constant gain that brings this segment to the target
            # (the typical gain while it is too short or quiet to measure).
            bus_lufs = gated_loudness(np.array(self._bus_meter.sub_block_powers) * scale)
            measured = math.isfinite(bus_lufs)
            gain = self._preset.target_lufs - (bus_lufs if measured else TYPICAL_BUS_LUFS)
            ramp = GainRamp(self._samples_in, len(bus), gain, gain, ramp_samples)
            if measured:
                self._gain_db = gain
        else:
            ramp = GainRamp(self._samples_in, len(bus), self._gain_db, self._gain_db, ramp_samples)
            if new_powers.size:
                # one ramp's step, or where the music got louder or quieter than that can
                # follow, a larger one at the same average rate over the segment, still over
                # the same ramp so that it acts while the change is heard (spread over the
                # segment, the loud segment had passed before the gain reached it: 0.56 LU
                # left instead of 0.31)
                rate = self.max_step_db / self.ramp_seconds  # dB a second
                longest = min(MAX_GAIN_STEP_LONG_DB, rate * len(bus) / self.sample_rate)
                allowed = max(self.max_step_db, longest)
                ramp.end_db = self._end_gain_db(
                    ramp, new_powers, allowed, rise=ending_seconds is None
                )
            self._gain_db = ramp.end_db
        self._ride(ramp, measured_before, level_db)
        return self._master(bus, ramp)

    def _ride(self, ramp: GainRamp, measured_before: int, level_db: float) -> None:
        """Ride ``ramp``'s segment down where its momentary loudness (at the ramp's gain,
        less ``level_db``) rises more than ``SWELL_ALLOWANCE_LU`` over the 95th percentile of
        the momentary loudness heard so far (less its planned levels): a held note that
        swells in the room, which the segment's gain, set for its integrated loudness, does
        not see. The whole window of a momentary reading over the ceiling comes down by its
        excess (at most ``MAX_RIDE_DB``), approached and left at the ride's rates, and the
        ride joins the previous segment's where it ended."""
        step = self._bus_meter.step
        history = np.array(self._reference_powers)
        powers = np.array(self._bus_meter.sub_block_powers[measured_before:])
        start = self._ride_end_db
        if len(history) * step < RIDE_HISTORY_SECONDS * self.sample_rate or not len(powers):
            self._release_ride(ramp)
            return
        with np.errstate(divide="ignore"):
            heard = 10.0 * np.log10(block_powers(history))
        heard = heard[heard > -70.0 + 0.691]
        if not len(heard):
            self._release_ride(ramp)
            return
        ceiling = float(np.percentile(heard, 95)) + SWELL_ALLOWANCE_LU + level_db
        middles = (measured_before + np.arange(len(powers)) + 0.5) * step - ramp.first_sample
        gained = powers * 10.0 ** (ramp.db_at(middles) / 10.0)
        before = np.array(self._gained_powers[-3:])
        with np.errstate(divide="ignore"):
            momentary = 10.0 * np.log10(block_powers(np.concatenate([before, gained])))
        # the window of reading k holds sub-blocks k - 3 .. k: each sub-block comes down by
        # the largest excess of the readings it is in
        excess = np.clip(momentary[-len(powers) :] - ceiling, 0.0, MAX_RIDE_DB)
        need = np.array([excess[k : k + 4].max() for k in range(len(excess))])
        if need.max() < 0.1:  # dB: nothing to hear
            self._release_ride(ramp)
            return
        seconds = middles / self.sample_rate
        distance = seconds[None, :] - seconds[:, None]  # [need's sub-block, this one]
        rate = np.where(distance < 0, RIDE_ATTACK_DB_PER_SECOND, RIDE_RELEASE_DB_PER_SECOND)
        ride = (need[:, None] - rate * np.abs(distance)).max(axis=0)
        # from where the last segment's ride ended, at the same rates
        since_start = np.clip(seconds, 0.0, None)
        ride = np.maximum(ride, -start - RIDE_RELEASE_DB_PER_SECOND * since_start)
        ride = np.clip(
            np.minimum(ride, -start + RIDE_ATTACK_DB_PER_SECOND * since_start), 0.0, MAX_RIDE_DB
        )
        self._set_ride(ramp, np.concatenate([[0.0], middles]), -np.concatenate([[-start], ride]))

    def _release_ride(self, ramp: GainRamp) -> None:
        """No swell in ``ramp``'s segment: the last segment's ride, if any, comes back up
        at the release rate."""
        start = self._ride_end_db
        if start < 0.0:
            back = -start / RIDE_RELEASE_DB_PER_SECOND * self.sample_rate
            self._set_ride(ramp, np.array([0.0, back]), np.array([start, 0.0]))

    def _set_ride(self, ramp: GainRamp, offsets: np.ndarray, ride_db: np.ndarray) -> None:
        order = np.argsort(offsets, kind="stable")
        offsets, ride_db = offsets[order], ride_db[order]
        ramp.ride_offsets, ramp.ride_db = offsets, ride_db
        self._ride_end_db = float(np.interp(ramp.samples - 1, offsets, ride_db))

    def finish(self, tail_stems: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Master the synth's release tail (``SegmentRenderer.finish_stems``) at the last
        gain, then flush the limiter: the rest of the output, float32 ``[samples, 2]``."""
        if self._finished:
            raise RuntimeError("this StreamingMaster is finished")
        chunks = []
        bus = self._mixer.process(tail_stems or {})
        bus = np.concatenate([bus, self._mixer.flush()])
        if len(bus):
            self._bus_meter.add(bus)
            gain = (
                self._gain_db
                if self._gain_db is not None
                else (self._preset.target_lufs - TYPICAL_BUS_LUFS)
            )
            ramp = GainRamp(self._samples_in, len(bus), gain, gain, 0)
            self._release_ride(ramp)
            chunks.append(self._master(bus, ramp))
        self._finished = True
        rest = self._limiter.flush()
        chunks.append(rest)
        self._samples_out += len(rest)
        return np.ascontiguousarray(np.concatenate(chunks))
