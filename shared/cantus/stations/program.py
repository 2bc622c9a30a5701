"""One station's program, without I/O: which piece to ask for next, what each delivered
piece is, which are rejected as repeats, and where real-time playback stands.

The whole state is a ``StationStatus`` message, so the station service can snapshot it to
Kafka after every change and rebuild from the last snapshot after a restart. A snapshot is
one Kafka record (1 MB at most), so it stays bounded however long the station runs: the
program keeps the pieces still to play and a window of recent ones (``SnapshotLimits``),
older melodies live on as capped fingerprints for the repeat check, and a piece counter
(``next_position``) keeps positions and seeds unique once pieces leave the window.
Snapshots written before the window (``snapshot_version`` 0) are migrated on load.

Entry statuses: ``requested`` (sent to the composer) → ``composing`` (its melody passed
the repeat check) → ``ready`` (completed and stored) → ``streamed`` (all its audio is in
the stream); ``rejected`` (a near-duplicate, never streamed) is final. Whether a streamed
piece is playing or played follows from the playback clock (``feeds.now_playing``).
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass

from cantus.music.notes import PITCH_CLASS_NAMES
from cantus.settings import Settings
from cantus.stations import novelty
from cantus.stations.config import StationConfig, parse_station_config
from cantus.stations.control import next_step
from cantus.stations.feeds import playback_seconds
from cantus.stations.sessions import ControlMode, SessionConfig, session_config_from_yaml
from cantus.stations.signals import Rejection, take_signal
from cantus.stations.steering import PieceChoice, apply_feedback, choose_next, initial_steering
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb
from cantus.v1 import station_pb2 as st

ACTIVE = ("requested", "composing", "ready")
"""Entries whose audio is not yet in the stream."""
STREAM_OUTPUT = "opus"
"""The one audio file a station's piece needs (ComposeRequest.outputs): the stream is made
from the render segments, and a restarted station reads the piece back from piece.opus
(``StationService.stored_audio``). Lead sheets, pictures and other formats only when the
station's config asks (``StationConfig.outputs``)."""
STREAM_SEGMENT_AUDIO = "flac"
"""How a station's pieces' render segments are encoded (ComposeRequest.segment_audio): the
station decodes each and encodes its stream (AAC) from them, so lossless segments spare the
render an Opus encode per segment and the listeners a second lossy generation
(docs/results/station_capacity.md, session 18)."""
MAX_TRIES_PER_STEP = 4
"""A plan step whose pieces were rejected this often is given up (the plan goes on)."""
ENERGY_TRIES = 2
"""A session step's pieces are held to its energy level this many times; once that many
were rejected (for energy or anything else), the next piece that fits its tempo and key is
kept whatever its energy, and the log says so: composing again costs a piece's time, and
a session must not stall on the energy, whose levels overlap (``measure.energy_band``)."""
SNAPSHOT_VERSION = 1
"""``StationStatus.snapshot_version`` this module writes: 1 is the bounded window."""


def _setting_default(name: str) -> int:
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class SnapshotLimits:
    """How much of its past a station's snapshot keeps (``Settings.station_*``)."""

    history_pieces: int = _setting_default("station_history_pieces")
    fingerprints: int = _setting_default("station_fingerprints")
    fingerprint_intervals: int = _setting_default("station_fingerprint_intervals")

    @classmethod
    def from_settings(cls, settings: Settings) -> SnapshotLimits:
        return cls(
            history_pieces=settings.station_history_pieces,
            fingerprints=settings.station_fingerprints,
            fingerprint_intervals=settings.station_fingerprint_intervals,
        )


def new_status(
    name: str,
    config_yaml: str,
    plan: list[st.PlanStep] | None = None,
    session: st.SessionState | None = None,
) -> st.StationStatus:
    config = parse_station_config(config_yaml)
    status = st.StationStatus(
        name=name,
        config_yaml=config_yaml,
        running=True,
        steering=initial_steering(config),
        plan=plan or [],
        updated_unix_ns=time.time_ns(),
        snapshot_version=SNAPSHOT_VERSION,
    )
    if session is not None and session.config_yaml:
        status.session.CopyFrom(session)
    return status


def migrate(status: st.StationStatus, limits: SnapshotLimits) -> None:
    """Bring a snapshot of the unbounded format (version 0: the whole program, each entry
    with its melody) to the current one, in place; a current snapshot is left as it is.
    The window itself is cut by ``Program.trim``."""
    if status.snapshot_version >= SNAPSHOT_VERSION:
        return
    if status.program:
        last = max(entry.position for entry in status.program)
        status.next_position = max(status.next_position, last + 1)
    melodies = [
        entry
        for entry in sorted(status.program, key=lambda e: e.position)
        if entry.status != "rejected" and entry.melody_intervals
    ]
    for entry in melodies[-limits.fingerprints :]:
        status.fingerprints.add(
            piece_id=entry.piece_id,
            intervals=list(entry.melody_intervals)[: limits.fingerprint_intervals],
        )
    for entry in status.program:
        entry.ClearField("melody_intervals")
    status.snapshot_version = SNAPSHOT_VERSION


class Program:
    """Decisions over one station's ``StationStatus`` (mutated in place)."""

    def __init__(self, status: st.StationStatus, limits: SnapshotLimits | None = None) -> None:
        self.status = status
        self.config: StationConfig = parse_station_config(status.config_yaml)
        self.limits = limits or SnapshotLimits()
        migrate(status, self.limits)
        self.trim()
        self.session: SessionConfig | None = (
            session_config_from_yaml(status.session.config_yaml)
            if status.HasField("session")
            else None
        )
        self.adjustment: st.Adjustment | None = None
        """What closed-loop control decided for the last step it added (for the outcome
        log; the caller takes it)."""
        self._melodies = novelty.MelodyIndex()
        """The fingerprints' n-grams (the snapshot keeps only their intervals)."""
        for fingerprint in status.fingerprints:
            self._melodies.add(
                fingerprint.piece_id, novelty.interval_ngrams(list(fingerprint.intervals))
            )

    # --- what to compose next -----------------------------------------------------------------
    def pieces_ahead(self, now_ns: int | None = None) -> int:
        """Pieces not yet heard: being composed, ready, or streamed but not yet reached."""
        position = playback_seconds(self.status, now_ns)
        return sum(
            1
            for e in self.status.program
            if e.status in ACTIVE or (e.status == "streamed" and e.stream_start_seconds > position)
        )

    def priority_of_next(self, now_ns: int | None = None) -> pb.Priority:
        """How soon the piece asked for next is needed (``PieceSpec.priority``), from the
        pieces in hand (asked for, not yet wholly streamed) and the stream's lead:

        * urgent: none in hand and less than the prebuffer ahead of playback, so listeners
          hear nothing (a new station) or soon will (one running dry) until it comes;
        * normal: one in hand, or none with a prebuffer's lead: it is next to play;
        * background: two or more in hand, a minute of audio or more before it plays.

        In a busy stack the services take urgent pieces first (``cantus.scheduling``)."""
        in_hand = sum(1 for e in self.status.program if e.status in ACTIVE)
        if in_hand >= 2:
            return pb.PRIORITY_BACKGROUND
        if in_hand == 1:
            return pb.PRIORITY_NORMAL
        lead = self.status.stream_seconds - playback_seconds(self.status, now_ns)
        return pb.PRIORITY_URGENT if lead < self.config.prebuffer_seconds else pb.PRIORITY_NORMAL

    @property
    def closed_loop(self) -> bool:
        """A session whose steps control decides one by one (``cantus.stations.control``)."""
        return self.session is not None and self.session.mode is not ControlMode.OPEN

    def plan_finished(self) -> bool:
        """A plan station asks for nothing once each step has a piece that was not rejected
        (a closed-loop session: once its last step has been decided, too)."""
        if not self.status.plan:
            return False
        if self.closed_loop and not self.status.plan[-1].last:
            return False
        return all(step.index in self._steps_done() for step in self.status.plan)

    def _steps_done(self) -> set[int]:
        # Pieces that left the window count through plan_progress.
        progress = self.status.plan_progress
        tries = self._rejections()
        done = {e.plan_step for e in self.status.program if e.status != "rejected"}
        done |= set(progress.steps_done)
        return done | {step for step, count in tries.items() if count >= MAX_TRIES_PER_STEP}

    def _rejections(self) -> dict[int, int]:
        """Plan step → its pieces rejected so far (those out of the window included)."""
        tries: dict[int, int] = dict(self.status.plan_progress.rejections)
        for e in self.status.program:
            if e.status == "rejected":
                tries[e.plan_step] = tries.get(e.plan_step, 0) + 1
        return tries

    def holds_energy(self, entry: st.ProgramEntry) -> bool:
        """Whether a session piece is held to its step's energy level: a session's, while
        its step has had fewer than ``ENERGY_TRIES`` pieces rejected."""
        if self.session is None or entry.plan_step < 0 or not entry.energy:
            return False
        return self._rejections().get(entry.plan_step, 0) < ENERGY_TRIES

    def wants_piece(self, now_ns: int | None = None) -> bool:
        if not self.status.running or self.plan_finished():
            return False
        return self.pieces_ahead(now_ns) < self.config.buffer_pieces + 1

    def next_request(self, piece_id: str) -> tuple[st.ProgramEntry, api.ComposeRequest]:
        """Add the next piece to the program; returns its entry and the request to send."""
        self.trim()
        position = self.status.next_position
        self.status.next_position += 1
        seed = _seed(self.status.name, position)
        rng = random.Random(seed)
        plan_step = -1
        step: st.PlanStep | None = None
        if self.status.plan or self.closed_loop:
            done = self._steps_done()
            step = next((s for s in self.status.plan if s.index not in done), None)
            if step is None:  # a closed-loop session decides its next step now
                step = self._decide_step()
            plan_step = step.index
            choice = PieceChoice(
                style=self._plan_style(rng),
                tempo_bpm=step.tempo_bpm,
                energy=step.energy,
                mood=step.mood,
                key=step.key,
                mode=step.mode,
                meter="4/4",
                bars=step.bars,
            )
        else:
            choice = choose_next(self.config, self.status.steering, rng)
        entry = st.ProgramEntry(
            piece_id=piece_id,
            position=position,
            title=f"{self.status.name} #{position + 1}: {choice.mood} {choice.style} "
            f"in {choice.key} {choice.mode}",
            key=choice.key,
            mode=choice.mode,
            tempo_bpm=choice.tempo_bpm,
            mood=choice.mood,
            style=choice.style,
            status="requested",
            stream_start_seconds=-1,
            plan_step=plan_step,
        )
        request = api.ComposeRequest(
            key=choice.key,
            mode=choice.mode,
            tempo_bpm=choice.tempo_bpm,
            meter=choice.meter,
            bars=choice.bars,
            style=choice.style,
            mood=choice.mood,
            seed=seed,
            loudness_preset=self.config.loudness_preset,
            outputs=list(dict.fromkeys([STREAM_OUTPUT, *self.config.outputs])),
            priority=self.priority_of_next(),
            segment_audio=STREAM_SEGMENT_AUDIO,
        )
        if step is not None and self.session is not None:
            entry.energy_asked = step.energy
            if step.tempo_end_bpm and step.tempo_end_bpm != step.tempo_bpm:
                request.tempo_end_bpm = entry.tempo_end_bpm = step.tempo_end_bpm
            # a session's pieces flow into each other; only the last closes (final cadence)
            request.no_ritardando = self.closed_loop and not step.last
        if self.config.palettes:
            names = list(self.config.palettes)
            weights = [self.config.palettes[name] for name in names]
            request.palette = rng.choices(names, weights=weights)[0]
        if self.config.forms:  # drawn after the palette: a config without forms keeps its draws
            names = list(self.config.forms)
            request.form = rng.choices(names, weights=[self.config.forms[n] for n in names])[0]
        if self.config.lyrics:
            themes = self.config.themes()
            # one theme draws nothing, so a config of one theme keeps its draws
            request.lyrics_theme = rng.choice(themes) if len(themes) > 1 else themes[0]
            request.lyrics_language = self.config.lyrics_language
            request.lyrics_register = self.config.lyrics_register
        # append copies the message: hand back the entry the program holds, so that what
        # the caller sets on it (a rejection) is in the snapshot
        self.status.program.append(entry)
        return self.status.program[-1], request

    def _decide_step(self) -> st.PlanStep:
        """The next step of a closed-loop session, from the signals so far; it starts at the
        tempo the step before it ends on."""
        assert self.session is not None
        plan = self.status.plan
        previous = (plan[-1].tempo_end_bpm or plan[-1].tempo_bpm) if plan else 0.0
        decision = next_step(
            self.session,
            self.status.session,
            index=len(plan),
            previous_end_bpm=previous,
            now_ns=time.time_ns(),
        )
        plan.append(decision.step)
        self.adjustment = decision.adjustment
        return plan[-1]

    def signal(self, signal: st.ListenerSignal) -> Rejection | None:
        """Take a (checked) listener signal into the session's state; why it was not used,
        if it was not. ``KeyError`` for a station that is no session."""
        if self.session is None:
            raise KeyError(f"station: {self.status.name} is not a listening session")
        return take_signal(self.status.session, self.session, signal)

    def _plan_style(self, rng: random.Random) -> str:
        styles = list(self.config.styles)
        return rng.choices(styles, weights=[self.config.styles[s] for s in styles])[0]

    # --- what arrives -------------------------------------------------------------------------
    def entry(self, piece_id: str) -> st.ProgramEntry | None:
        return next((e for e in self.status.program if e.piece_id == piece_id), None)

    def accepted(self, piece_id: str, spec: pb.PieceSpec) -> None:
        entry = self.entry(piece_id)
        if entry is not None:
            entry.energy = spec.energy
            entry.palette = spec.palette
            entry.key = PITCH_CLASS_NAMES[spec.key_tonic]
            entry.form.CopyFrom(spec.form)  # the plan the request validation chose (auto)

    def melody_done(self, piece_id: str, pitches: list[int]) -> bool:
        """Check a finished melody against the recent accepted ones (the fingerprints);
        False if it was rejected."""
        entry = self.entry(piece_id)
        if entry is None or entry.status != "requested":
            return entry is not None and entry.status != "rejected"
        # Both sides of the comparison are cut to the same first steps.
        intervals = novelty.pitches_to_intervals(pitches)[: self.limits.fingerprint_intervals]
        grams = novelty.interval_ngrams(intervals)
        closest = self._melodies.most_similar(grams)
        if closest is not None and closest[1] >= self.config.similarity_threshold:
            entry.status = "rejected"
            entry.reason = (
                f"near-duplicate of {closest[0]}: interval {novelty.DEFAULT_N}-gram "
                f"similarity {closest[1]:.2f} >= {self.config.similarity_threshold:.2f}"
            )
            return False
        entry.status = "composing"
        self.status.fingerprints.add(piece_id=piece_id, intervals=intervals)
        self._melodies.add(piece_id, grams)
        excess = len(self.status.fingerprints) - self.limits.fingerprints
        if excess > 0:
            for oldest in self.status.fingerprints[:excess]:
                self._melodies.remove(oldest.piece_id)
            del self.status.fingerprints[:excess]
        return True

    def _forget_melody(self, piece_id: str) -> None:
        """A rejected piece is never heard, so its melody does not count as played."""
        self._melodies.remove(piece_id)
        for index, fingerprint in enumerate(self.status.fingerprints):
            if fingerprint.piece_id == piece_id:
                del self.status.fingerprints[index]
                return

    def completed(self, piece_id: str, done: pb.PieceCompleted) -> None:
        entry = self.entry(piece_id)
        if entry is None:
            return
        entry.duration_seconds = done.duration_seconds
        entry.integrated_lufs = done.integrated_lufs
        if entry.status == "composing":
            entry.status = "ready"

    def plan_step(self, entry: st.ProgramEntry) -> st.PlanStep | None:
        return next((s for s in self.status.plan if s.index == entry.plan_step), None)

    def reject(self, piece_id: str, reason: str) -> None:
        entry = self.entry(piece_id)
        if entry is not None and entry.status in ACTIVE:
            entry.status = "rejected"
            entry.reason = reason
            self._forget_melody(piece_id)

    def failed(self, piece_id: str, reason: str) -> None:
        self.reject(piece_id, f"composition failed: {reason}")

    def feedback(self, piece_id: str, kind: str) -> None:
        entry = self.entry(piece_id)
        if entry is None:
            raise KeyError(f"piece_id: {piece_id} is not in station {self.status.name}")
        if kind == "like":
            entry.likes += 1
        else:
            entry.skips += 1
        self.status.steering.CopyFrom(
            apply_feedback(self.config, self.status.steering, entry, kind)
        )

    # --- the snapshot's window ---------------------------------------------------------------
    def trim(self, now_ns: int | None = None) -> None:
        """Drop all but the ``history_pieces`` most recent finished entries (rejected, or
        streamed and played out); what the plan needs of them moves to ``plan_progress``."""
        position = playback_seconds(self.status, now_ns)
        finished = [
            index
            for index, e in enumerate(self.status.program)
            if e.status == "rejected"
            or (
                e.status == "streamed"
                and e.stream_start_seconds >= 0
                and e.stream_start_seconds + max(e.duration_seconds, e.fed_seconds) <= position
            )
        ]
        dropped = finished[: max(len(finished) - self.limits.history_pieces, 0)]
        progress = self.status.plan_progress
        for index in reversed(dropped):  # deleting in place keeps the other entries' objects
            entry = self.status.program[index]
            if entry.plan_step >= 0:
                if entry.status == "rejected":
                    progress.rejections[entry.plan_step] += 1
                elif entry.plan_step not in progress.steps_done:
                    progress.steps_done.append(entry.plan_step)
            del self.status.program[index]

    # --- the stream ---------------------------------------------------------------------------
    def resume_at(self, stream_seconds: float) -> list[str]:
        """After a restart, take back what was fed but never reached the published stream
        (a session holds up to its release lead and the pieces fed after it back,
        ``cantus.stations.intensity``): a piece that starts at or after ``stream_seconds``
        is fed again from its start, one playing there from where the stream ends. Returns
        the piece ids taken back."""
        taken = []
        for entry in self.status.program:
            if entry.status not in ("streamed", "composing", "ready") or entry.fed_seconds <= 0:
                continue
            if entry.stream_start_seconds < 0:
                continue
            published = stream_seconds - entry.stream_start_seconds
            if published >= entry.fed_seconds - 1e-6:
                continue  # all of it is in the stream
            entry.fed_seconds = max(published, 0.0)
            if entry.fed_seconds == 0:
                entry.stream_start_seconds = -1
            if entry.status == "streamed":
                entry.status = "ready"
            taken.append(entry.piece_id)
        return taken

    def next_to_stream(self) -> st.ProgramEntry | None:
        """The first entry, in program order, whose audio is not yet all in the stream."""
        for entry in self.status.program:
            if entry.status in ("rejected", "streamed"):
                continue
            return entry
        return None

    def segment_published(
        self, duration_seconds: float, now_ns: int | None = None, *, held_seconds: float = 0.0
    ) -> None:
        self.status.stream_seconds += duration_seconds
        self.start_playback(held_seconds, now_ns)
        self.status.next_segment += 1

    def start_playback(self, held_seconds: float = 0.0, now_ns: int | None = None) -> bool:
        """Start the playback clock once the prebuffer is in hand; True if it started now.

        The first piece streams while it is rendered, barely faster than real time, and
        would otherwise run dry at once. A station's prebuffer is what it has published. A
        session's also counts ``held_seconds``, the mixed audio not yet published (held
        back by its intensity stage, ``cantus.stations.intensity``, or in the encoder), once
        a segment is published: it releases only its lead ahead of playback from the start
        (the encoder publishes a segment once the next one begins, so about the lead less a
        segment is out), so an intensity change in the first seconds is heard within that
        lead, as later, with the same audio in hand."""
        if self.status.stream_started_unix_ns:
            return False
        published = self.status.stream_seconds
        prebuffer = self.config.prebuffer_seconds
        if self.session is not None:
            least = min(self.config.segment_seconds, prebuffer)
            ready = published >= least and published + held_seconds >= prebuffer
        else:
            ready = published >= prebuffer
        if ready:
            self.status.stream_started_unix_ns = time.time_ns() if now_ns is None else now_ns
        return ready

    def tick(self, now_ns: int | None = None) -> None:
        """Update how far the stream is ahead of playback; count (and ride over) underruns."""
        if not self.status.stream_started_unix_ns:
            return
        now_ns = time.time_ns() if now_ns is None else now_ns
        ahead = self.status.stream_seconds - playback_seconds(self.status, now_ns)
        if ahead < 0 and self.status.running and not self.plan_finished():
            # Playback would have stalled: it resumes where the stream ends. One underrun
            # per time it runs dry, not per tick it stays dry.
            if self.status.ahead_seconds > 0:
                self.status.underruns += 1
            self.status.stream_started_unix_ns = now_ns - int(self.status.stream_seconds * 1e9)
        self.status.ahead_seconds = max(ahead, 0.0)


def _seed(name: str, position: int) -> int:
    digest = hashlib.sha256(f"{name}/{position}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
