"""Intensity mid-stream (#17): the audio not yet streamed, the playing piece's rest included,
is re-levelled, so a change is heard within the stage's lead, without a jump."""

from __future__ import annotations

import asyncio
import time
import types

import numpy as np
import pytest

from cantus.settings import Settings
from cantus.stations.config import parse_station_config
from cantus.stations.intensity import (
    LIMIT,
    MAX_BOOST_DB,
    MAX_CUT_DB,
    RAMP_SECONDS,
    IntensityStage,
    intensity_gain_db,
    release_horizon,
)
from cantus.stations.sessions import session_config
from cantus.v1 import station_pb2 as st

from .test_session_program import STATION_YAML, session_program

RATE = 1000  # frames a second: small arrays, the same arithmetic


def _tone(seconds: float, level: float = 0.1) -> np.ndarray:
    return np.full((round(seconds * RATE), 2), level, np.float32)


def test_levels_span_a_cut_and_a_smaller_boost():
    assert intensity_gain_db(0.5) == 0.0
    assert intensity_gain_db(0.0) == -MAX_CUT_DB and intensity_gain_db(1.0) == MAX_BOOST_DB
    assert intensity_gain_db(-3) == -MAX_CUT_DB  # clamped


def test_a_change_starts_at_the_first_frame_not_yet_released_and_ramps():
    stage = IntensityStage(RATE)
    stage.push(_tone(30.0))
    first = stage.release(10 * RATE)
    assert len(first) == 10 * RATE and np.allclose(first, 0.1)
    assert stage.set_intensity(0.0) == pytest.approx(10.0)  # where the change starts
    rest = stage.release()
    assert len(rest) == 20 * RATE and stage.pending_frames == 0
    level = rest[:, 0]
    ramp = round(RAMP_SECONDS * RATE)
    assert level[0] == pytest.approx(0.1, rel=0.01)  # no jump where it starts
    assert np.all(np.diff(level[:ramp]) <= 0)  # a smooth fall …
    assert np.max(np.abs(np.diff(level))) < 0.1 * 0.7 / ramp * 2
    assert np.allclose(level[ramp:], 0.1 * 10 ** (-MAX_CUT_DB / 20))  # … to the cut


def test_a_ramp_goes_on_across_releases_and_a_boost_never_clips():
    stage = IntensityStage(RATE)
    stage.push(_tone(4.0, level=0.8))
    stage.set_intensity(1.0)
    parts = [stage.release(n) for n in (100, 200, 300, 4000)]
    joined = np.concatenate(parts)[:, 0]
    assert len(joined) == 4 * RATE
    assert np.all(np.diff(joined) >= -1e-6)  # rises without a step back at the joins
    assert joined.max() < 1.0 and joined[-1] > LIMIT  # soft-limited under full scale


def test_release_horizon_is_the_lead_ahead_of_playback():
    config = parse_station_config(STATION_YAML)
    session = session_config("focus", "intensity_lead_seconds: 6")
    status = st.StationStatus()
    # before playback: the lead only (the prebuffer is held in hand, Program.start_playback)
    assert release_horizon(status, config, session) == 8.0
    now = time.time_ns()
    status.stream_started_unix_ns = now - 30 * 10**9
    # two 4 s segments at least, so the encoder can always cut a whole one
    assert release_horizon(status, config, session, now) == pytest.approx(38.0)
    longer = session_config("focus", "intensity_lead_seconds: 12")
    assert release_horizon(status, config, longer, now) == pytest.approx(42.0)


def test_a_session_worker_hears_an_intensity_change_within_its_lead():
    """The station's own path: a whole piece fed at once is held back, an intensity signal
    re-levels what playback has not reached, and the outcome log says how soon."""
    from cantus.stations.feeds import playback_seconds
    from services.station.app import SAMPLE_RATE, StationWorker

    program = session_program("focus", "minutes: 5")
    service = types.SimpleNamespace(settings=Settings(), owners={})
    worker = StationWorker(service, program.status)
    written: list[np.ndarray] = []
    outcomes: list[st.OutcomeRecord] = []
    changes: list[int] = []
    signalled: list[float] = []  # playback's position before and after the signal

    async def write(frames):
        written.append(frames)

    async def publish_outcome(**what):
        outcomes.append(st.OutcomeRecord(**what))

    worker.segmenter = types.SimpleNamespace(write=write)  # type: ignore[assignment]
    worker.publish_outcome = publish_outcome  # type: ignore[method-assign]
    worker.mixer.crossfade_frames = worker.mixer._default_frames = 0
    # playback has been going 40 s; a 60 s piece arrives at once
    worker.status.stream_started_unix_ns = time.time_ns() - 40 * 10**9
    entry = st.ProgramEntry(piece_id="p", stream_start_seconds=-1)

    async def scenario():
        await worker._write(entry, np.full((60 * SAMPLE_RATE, 2), 0.1, np.float32))
        released = sum(len(f) for f in written)
        # playback (40 s and the time this took on a busy machine) + the 8 s lead
        assert 48.0 <= released / SAMPLE_RATE <= playback_seconds(worker.status) + 8.0
        changes.append(released)
        signalled.append(playback_seconds(worker.status))
        signal = st.ListenerSignal(
            station="walk-1", measured_unix_ns=time.time_ns(), kind=st.INTENSITY, value=0.0
        )
        await worker.on_signal(signal)
        signalled.append(playback_seconds(worker.status))
        await worker._release(everything=True)

    asyncio.run(scenario())
    level = np.concatenate(written)[:, 0]
    change = changes[0]
    assert np.allclose(level[:change], 0.1)  # what was already streamed stays
    assert np.allclose(level[change + SAMPLE_RATE :], 0.1 * 10 ** (-MAX_CUT_DB / 20))
    adjustment = next(o.adjustment for o in outcomes if o.WhichOneof("what") == "adjustment")
    assert adjustment.gain_db == -MAX_CUT_DB
    # the change starts where the release stopped: heard that long after playback's position
    # at the signal, at most the 8 s lead
    start = changes[0] / SAMPLE_RATE
    heard = adjustment.heard_after_seconds  # rounded to 0.01 s
    assert start - signalled[1] - 0.01 <= heard <= start - signalled[0] + 0.01
    assert adjustment.heard_after_seconds <= 8.01


def test_a_session_holds_its_prebuffer_in_hand_and_starts_at_its_lead():
    """Playback starts once published and held audio make the prebuffer (a segment
    published at least); a station without a session still waits for it published."""
    program = session_program("focus", "minutes: 5")
    assert program.config.prebuffer_seconds == 20.0
    assert not program.start_playback(held_seconds=30.0, now_ns=10**9)  # nothing out yet
    program.segment_published(4.0, now_ns=2 * 10**9, held_seconds=10.0)
    assert not program.status.stream_started_unix_ns  # 4 s published + 10 s held < 20 s
    assert program.start_playback(held_seconds=16.0, now_ns=3 * 10**9)
    assert program.status.stream_started_unix_ns == 3 * 10**9
    assert not program.start_playback(held_seconds=60.0, now_ns=4 * 10**9)  # once
    from cantus.stations.program import Program, new_status

    plain = Program(new_status("radio", STATION_YAML))
    for second in range(4):
        plain.segment_published(4.0, now_ns=second * 10**9, held_seconds=60.0)
    assert not plain.status.stream_started_unix_ns  # held audio is a session's only
    plain.segment_published(4.0, now_ns=5 * 10**9)
    assert plain.status.stream_started_unix_ns == 5 * 10**9


def test_an_intensity_change_early_in_a_session_is_heard_within_the_lead():
    """The station's own path at a session's start: a 60 s first piece fed at once, the
    encoder's segments published as ffmpeg cuts them (playback starts with the first),
    and an intensity signal one second into playback: heard within the lead plus one segment,
    where the stream used to be released the prebuffer plus the lead ahead (27 s later)."""
    from services.station.app import SAMPLE_RATE, StationWorker

    program = session_program("focus", "minutes: 5")
    service = types.SimpleNamespace(settings=Settings(), owners={})
    worker = StationWorker(service, program.status)
    config = program.config
    released: list[int] = []
    outcomes: list[st.OutcomeRecord] = []

    async def write(frames):  # as ffmpeg: a segment is published once the next one begins
        released.append(len(frames))
        segment = round(config.segment_seconds * SAMPLE_RATE)
        while (sum(released) - 1) // segment > program.status.next_segment:
            program.segment_published(config.segment_seconds, held_seconds=worker.held_seconds)

    async def publish_outcome(**what):
        outcomes.append(st.OutcomeRecord(**what))

    worker.segmenter = types.SimpleNamespace(write=write)  # type: ignore[assignment]
    worker.publish_outcome = publish_outcome  # type: ignore[method-assign]
    worker.mixer.crossfade_frames = worker.mixer._default_frames = 0
    entry = st.ProgramEntry(piece_id="p", stream_start_seconds=-1)

    async def scenario():
        await worker._write(entry, np.full((60 * SAMPLE_RATE, 2), 0.1, np.float32))
        assert sum(released) / SAMPLE_RATE == pytest.approx(8.0)  # the lead, not 28 s
        assert program.status.stream_seconds == 4.0 and worker.held_seconds == 56.0
        # started as the first segment was published: 4 s out, 56 s in hand (two
        # segments asked for never came: the encoder holds the second until more comes)
        assert program.status.stream_started_unix_ns
        program.status.stream_started_unix_ns -= 10**9  # one second into playback
        await worker._release()
        signal = st.ListenerSignal(
            station="walk-1", measured_unix_ns=time.time_ns(), kind=st.INTENSITY, value=1.0
        )
        await worker.on_signal(signal)

    asyncio.run(scenario())
    adjustment = next(o.adjustment for o in outcomes if o.WhichOneof("what") == "adjustment")
    assert adjustment.gain_db == MAX_BOOST_DB
    assert 7.0 - 0.01 <= adjustment.heard_after_seconds <= 8.0 + config.segment_seconds
