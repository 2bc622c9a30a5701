"""A listening session inside a station's program: closed-loop steps decided one by one as
pieces are asked for, requests that ramp and flow on, signals taken, the last piece faded,
and the outcome log as JSON and CSV."""

from __future__ import annotations

import csv
import io
import time

import numpy as np
import pytest

from cantus.events.conversions import spec_form
from cantus.requests import validate_compose_request
from cantus.stations.intensity import intensity_adjustment
from cantus.stations.mixing import fade_out
from cantus.stations.outcomes import CSV_COLUMNS, outcome, session_log_csv, session_log_json
from cantus.stations.program import Program, new_status
from cantus.stations.sessions import session_config, session_config_to_yaml
from cantus.stations.signals import Rejection, new_session_state
from cantus.v1 import station_pb2 as st

STATION_YAML = "styles: {folk: 1}\nbars: 8\nmeters: ['4/4']\nbuffer_pieces: 1\n"


def session_program(preset="walk", overrides="minutes: 1.5") -> Program:
    config = session_config(preset, overrides)
    session = new_session_state(session_config_to_yaml(config), config)
    return Program(new_status("walk-1", STATION_YAML, [], session))


def cadence(value, at_ns):
    return st.ListenerSignal(
        station="walk-1", measured_unix_ns=at_ns, kind=st.STEP_CADENCE, value=value
    )


def test_a_closed_loop_session_decides_steps_as_it_asks_for_pieces():
    program = session_program()
    assert program.closed_loop and not program.status.plan
    assert program.wants_piece()
    now = time.time_ns()
    assert program.signal(cadence(92.0, now)) is None
    entry, request = program.next_request("a" * 32)
    step = program.status.plan[0]
    assert entry.plan_step == 0 and step.tempo_bpm == 92.0  # met where the walker is
    assert request.tempo_bpm == 92.0 and request.no_ritardando
    assert program.adjustment is not None and "cadence" in program.adjustment.reason
    spec = validate_compose_request(request, max_bars=64, urgent_allowed=True).spec
    assert spec.no_ritardando and spec.bars == 8 + spec_form(spec).pickup_bars
    # every next step starts where the one before ends, until the last
    steps = [step]
    for number in range(1, 20):
        program.signal(cadence(steps[-1].tempo_end_bpm or steps[-1].tempo_bpm, now + number))
        _, request = program.next_request(f"{number:032x}")
        steps.append(program.status.plan[-1])
        assert steps[-1].tempo_bpm == pytest.approx(steps[-2].tempo_end_bpm or steps[-2].tempo_bpm)
        if steps[-1].last:
            assert not request.no_ritardando  # the last piece closes: final cadence
            break
    assert steps[-1].last
    for entry in program.status.program:
        entry.status = "streamed"
    assert program.plan_finished() and not program.wants_piece()


def test_a_rejected_step_is_composed_again_with_the_same_targets():
    program = session_program()
    entry, _ = program.next_request("a" * 32)
    program.reject(entry.piece_id, "outside plan step 0")
    again, request = program.next_request("b" * 32)
    assert again.plan_step == 0 and len(program.status.plan) == 1
    assert request.tempo_bpm == program.status.plan[0].tempo_bpm


def test_signals_go_to_sessions_only():
    program = session_program()
    late = cadence(90.0, 5)
    assert program.signal(cadence(90.0, 10)) is None
    assert program.signal(late) is Rejection.LATE
    assert program.status.session.signals_rejected == 1
    plain = Program(new_status("radio", STATION_YAML))
    with pytest.raises(KeyError):
        plain.signal(cadence(90.0, 10))


def test_fade_out_reaches_silence_without_a_corner():
    frames = np.ones((48000, 2), dtype=np.float32)
    faded = fade_out(frames, 48000, 0.5)
    assert np.all(faded[:24000] == 1.0)
    assert faded[-1].max() < 1e-6
    assert np.all(np.diff(faded[24000:, 0]) <= 1e-7)  # falls monotonically
    assert abs(faded[24001, 0] - 1.0) < 1e-3  # starts without a step
    assert fade_out(frames[:100], 48000, 2.0)[-1].max() < 1e-6  # shorter than the fade


def test_the_outcome_log_as_json_and_csv():
    program = session_program()
    records = [
        outcome("walk-1", -1, started=st.SessionStarted(session=program.status.session)),
        outcome("walk-1", 3.0, signal=st.SignalOutcome(signal=cadence(101.0, 10**18))),
        outcome(
            "walk-1",
            4.0,
            signal=st.SignalOutcome(signal=cadence(150.0, 10**18 + 1), rejected="outlier"),
        ),
        outcome(
            "walk-1",
            5.0,
            adjustment=st.Adjustment(
                plan_step=1, planned_tempo_bpm=101, tempo_bpm=103, reason="entrain"
            ),
        ),
        outcome(
            "walk-1",
            20.0,
            played=st.ProgramEntry(
                piece_id="a" * 32,
                tempo_bpm=101,
                tempo_end_bpm=103,
                key="F",
                mode="major",
                energy_asked=0.6,
                energy_measured=0.41,
            ),
        ),
        outcome(
            "walk-1",
            30.0,
            adjustment=intensity_adjustment(
                0.8, 0.5, starts_at_seconds=38.0, playback_seconds=30.0
            ),
        ),
        outcome("walk-1", 90.0, ended=program.status.session),
    ]
    log = session_log_json("walk-1", records)
    assert log["started"]["session"]["target"]["tempo_bpm"] == 120.0
    assert [s["value"] for s in log["signals"]] == [101.0, 150.0]
    assert log["signals"][1]["rejected"] == "outlier"
    assert log["played"][0]["piece_id"] == "a" * 32 and log["adjustments"][0]["tempo_bpm"] == 103
    assert log["ended"] is not None
    rows = list(csv.DictReader(io.StringIO(session_log_csv(records))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["record"] for r in rows] == [
        "started", "signal", "signal", "adjustment", "played", "adjustment", "ended",
    ]  # fmt: skip
    # an intensity change back to the mastered level: its level and delay, no step
    level = rows[5]
    assert level["gain_db"] == "0.0" and level["heard_after_seconds"] == "8.0"
    assert level["plan_step"] == level["tempo_bpm"] == level["energy"] == ""
    assert rows[3]["gain_db"] == "" and rows[3]["tempo_bpm"] == "103.0"
    assert log["adjustments"][1]["gain_db"] == 0.0
    assert log["adjustments"][1]["heard_after_seconds"] == 8.0
    assert rows[1]["signal_kind"] == "STEP_CADENCE" and rows[2]["rejected"] == "outlier"
    assert rows[4]["tempo_end_bpm"] == "103.0" and rows[4]["energy"] == "0.6"
    assert rows[4]["energy_measured"] == "0.41" and log["played"][0]["energy_measured"] == 0.41


def test_a_ramped_piece_is_measured_against_its_ramps_end():
    from cantus.music.notes import Meter
    from cantus.render.tempo import ending_tempo_map
    from cantus.stations.measure import Measured, step_problems

    tempo = ending_tempo_map(100, Meter.parse("4/4"), 8, tempo_end_bpm=104, ritardando=False)
    tempi = tuple(bpm for _, bpm in tempo.changes)
    step = st.PlanStep(
        tempo_bpm=100, tempo_min_bpm=98, tempo_max_bpm=102, tempo_end_bpm=104, key="F",
        mode="major",
    )  # fmt: skip
    measured = Measured(100.0, "F", "major", ("F major", "D minor"), tempi)
    assert step_problems(measured, step) == []
    flat = Measured(100.0, "F", "major", ("F major", "D minor"), (100.0,))
    assert "ramp" in step_problems(flat, step)[0]


def test_mood_steered_sessions_hold_while_the_listener_reports_high_arousal():
    config = session_config("relax", "signal: mood")
    state = new_session_state("", config)
    now = time.time_ns()
    calm = st.ListenerSignal(station="x", measured_unix_ns=now, kind=st.MOOD, valence=0.5,
                             arousal=0.2)  # fmt: skip
    from cantus.stations.control import next_step
    from cantus.stations.signals import take_signal

    take_signal(state, config, calm)
    moving = next_step(config, state, index=1, previous_end_bpm=88.0, now_ns=now).step
    assert moving.tempo_end_bpm < 88.0
    aroused = st.ListenerSignal(station="x", measured_unix_ns=now + 1, kind=st.MOOD,
                                valence=0.5, arousal=0.95)  # fmt: skip
    take_signal(state, config, aroused)
    held = next_step(config, state, index=2, previous_end_bpm=88.0, now_ns=now + 1).step
    assert held.tempo_end_bpm == 88.0 and held.adjusted.startswith("hold")


def test_session_pieces_join_on_the_beat():
    from cantus.stations.mixing import StationMixer

    rate = 1000
    mixer = StationMixer(rate, crossfade_seconds=0.1)
    first = np.full((3000, 2), 0.5, dtype=np.float32)  # 2 s of bars, then 1 s of release
    mixer.hold(1000, fade_in_frames=50)
    out = [mixer.feed(first)]
    mixer.start_piece()
    second = np.ones((2000, 2), dtype=np.float32)
    out.append(mixer.feed(second))
    out.append(mixer.flush())
    stream = np.concatenate(out)
    assert len(stream) == 3000 + 2000 - 1000  # the release overlaps the next piece
    # the next piece is at full level 50 frames after the first piece's last barline
    assert stream[2000 + 60, 0] == pytest.approx(1.0 + 0.5 * np.cos(60.5 / 1000 * np.pi / 2),
                                                 abs=1e-3)  # fmt: skip
    # and the piece after it joins with the configured crossfade again
    assert mixer.crossfade_frames == 100


def test_a_session_resumes_from_its_snapshot():
    program = session_program()
    program.signal(cadence(95.0, time.time_ns()))
    program.next_request("a" * 32)
    program.next_request("b" * 32)
    restored = Program(st.StationStatus.FromString(program.status.SerializeToString()))
    assert restored.closed_loop and restored.session == program.session
    assert restored.status.session.rate_bpm == 95.0
    restored.next_request("c" * 32)
    plan = restored.status.plan
    assert [s.index for s in plan] == [0, 1, 2]
    assert plan[2].tempo_bpm == pytest.approx(plan[1].tempo_end_bpm or plan[1].tempo_bpm)


def test_a_restarted_session_feeds_again_what_never_reached_the_stream():
    """The audio a session held back (its release lead, pieces fed after it) died with the
    process: the program takes it back to where the published stream ends."""
    program = session_program()
    for piece_id, start, fed, status in [("a", 0.0, 20.0, "streamed"), ("b", 19.0, 20.0,
                                         "streamed"), ("c", 38.0, 5.0, "ready")]:  # fmt: skip
        entry, _ = program.next_request(piece_id * 32)
        entry.stream_start_seconds, entry.fed_seconds, entry.status = start, fed, status
    assert program.resume_at(30.0) == ["b" * 32, "c" * 32]
    a, b, c = program.status.program
    assert (a.status, a.fed_seconds) == ("streamed", 20.0)
    assert (b.status, b.fed_seconds, b.stream_start_seconds) == ("ready", 11.0, 19.0)
    assert (c.status, c.fed_seconds, c.stream_start_seconds) == ("ready", 0.0, -1)
    assert program.next_to_stream() is b
    assert program.resume_at(50.0) == []  # nothing fed beyond what is published now


def test_an_open_session_plays_todays_plan_and_logs_its_signals():
    from cantus.stations.sessions import reference_plan

    config = session_config("relax", "mode: open\nminutes: 2")
    session = new_session_state(session_config_to_yaml(config), config)
    plan = reference_plan(config)
    program = Program(new_status("relax-1", STATION_YAML, plan, session))
    assert not program.closed_loop and plan[-1].last
    _, request = program.next_request("a" * 32)
    assert request.tempo_bpm == plan[0].tempo_bpm
    assert not request.HasField("tempo_end_bpm") and not request.no_ritardando
    report = st.ListenerSignal(station="relax-1", measured_unix_ns=time.time_ns(),
                               kind=st.TOO_FAST)  # fmt: skip
    assert program.signal(report) is Rejection.SESSION_OPEN
    assert len(program.status.plan) == len(plan)  # nothing re-planned


def _quiet_c_major(tempo_bpm: float) -> bytes:
    """Eight bars of a soft C major tune in half notes over held C major chords."""
    import mido

    melody, chords = mido.MidiTrack(), mido.MidiTrack()
    melody.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm)))
    for pitch in [60, 64, 67, 72, 67, 64, 65, 62, 60, 64, 67, 64, 62, 59, 60, 60]:
        melody.append(mido.Message("note_on", note=pitch, velocity=45))
        melody.append(mido.Message("note_off", note=pitch, time=960))
    for root in [48, 53, 55, 48, 53, 55, 55, 48]:
        for offset in (0, 4, 7):
            chords.append(mido.Message("note_on", channel=1, note=root + offset, velocity=40))
        chords.append(mido.Message("note_off", channel=1, note=root, time=1920))
        for offset in (4, 7):
            chords.append(mido.Message("note_off", channel=1, note=root + offset))
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.extend([melody, chords])
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def test_a_piece_resumed_after_a_restart_still_overlaps_its_release_with_the_next(
    monkeypatch,
):
    """Found by CI (a walk session's station killed mid-piece): the resumed piece was fed
    from where the published stream ended but without its release held, so the next piece
    came in a whole release late and the session ended 6.3 s after its plan."""
    import asyncio
    import types

    from cantus.settings import Settings
    from services.station import app as station_app

    rate = station_app.SAMPLE_RATE
    program = session_program()
    entry, _ = program.next_request("a" * 32)
    step = program.plan_step(entry)
    assert step is not None and not step.last
    bars = round(step.duration_seconds * rate)
    # its bars, then 3 s of release (longer than the 2 s crossfade a station uses otherwise)
    stored = np.full((bars + 3 * rate, 2), 0.1, np.float32)
    # the restarted process: 3 s of it were published, the rest died with the old process
    entry.status, entry.stream_start_seconds, entry.fed_seconds = "streamed", 0.0, 5.0
    program.status.stream_seconds = 3.0
    restarted = Program(st.StationStatus.FromString(program.status.SerializeToString()))
    assert restarted.resume_at(3.0) == [entry.piece_id]
    service = types.SimpleNamespace(
        settings=Settings(), owners={}, stored_audio=lambda piece_id: stored
    )
    worker = station_app.StationWorker(service, restarted.status)
    streamed: list[int] = []

    async def stream(frames):
        streamed.append(len(frames))

    async def publish_outcome(**what):
        pass

    monkeypatch.setattr(worker, "_stream", stream)
    monkeypatch.setattr(worker, "publish_outcome", publish_outcome)
    asyncio.run(worker._feed())
    resumed = worker.program.status.program[0]
    assert resumed.status == "streamed"
    assert resumed.fed_seconds == pytest.approx(len(stored) / rate)
    # what is left of it up to its last bar line went out; its release waits to be mixed into
    # the next piece, which comes in on the plan's bar line
    assert sum(streamed) == bars - 3 * rate
    assert worker.mixer._head_needed == 3 * rate


def _energy_worker():
    import types

    from cantus.settings import Settings
    from services.station.app import StationWorker

    program = session_program()
    files: dict[str, bytes] = {}
    service = types.SimpleNamespace(
        settings=Settings(), owners={}, stored_files=lambda piece_id: dict(files)
    )
    worker = StationWorker(service, program.status)
    return worker, files


async def _deliver(worker, number: int, level: str) -> st.ProgramEntry:
    """The next piece of step 0, composed at energy ``level`` in folk's palette, completed
    and measured; its step is held to C major at its tempo so only the energy can miss."""
    entry, request = worker.program.next_request(f"{number:032x}")
    step = worker.program.status.plan[0]
    step.key, step.mode, step.tempo_end_bpm = "C", "major", 0.0
    spec = validate_compose_request(request, max_bars=64, urgent_allowed=True).spec
    spec.energy, spec.palette = level, "folk"
    worker.program.accepted(entry.piece_id, spec)
    entry.status = "ready"
    await worker._hold_to_step(entry, step)
    return entry


def test_a_session_piece_is_held_to_its_steps_energy_then_kept_after_the_retries():
    import asyncio

    from cantus.stations.measure import midi_energy
    from cantus.stations.program import ENERGY_TRIES

    worker, files = _energy_worker()

    async def scenario():
        first = await _deliver(worker, 0, "low")
        files["piece.mid"] = _quiet_c_major(worker.program.status.plan[0].tempo_bpm)
        first.status = "ready"  # measured again, now that its MIDI is stored
        await worker._hold_to_step(first, worker.program.status.plan[0])
        assert first.status == "ready" and first.reason == ""  # a quiet low piece plays
        assert 0 < first.energy_measured == midi_energy(files["piece.mid"]) < 0.3
        worker.program.reject(first.piece_id, "taken back for this test")  # try 1
        misses = [await _deliver(worker, n, "high") for n in range(1, ENERGY_TRIES)]
        for missed in misses:  # a quiet piece asked high: composed again, same step
            assert missed.status == "rejected" and "energy" in missed.reason
            assert "below" in missed.reason and missed.plan_step == 0
        kept = await _deliver(worker, ENERGY_TRIES, "high")  # the retries are spent
        assert kept.status == "ready" and kept.plan_step == 0
        assert kept.reason.startswith(f"kept after {ENERGY_TRIES} pieces rejected: energy")
        assert len(worker.program.status.plan) == 1

    asyncio.run(scenario())
