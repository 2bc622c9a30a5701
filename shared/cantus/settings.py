"""Settings of every Cantus process, read once from the environment (``CANTUS_…``).

The same code runs on one machine (the embedded stack that ``cantus up`` starts) and
against a real Kafka cluster and a remote Triton: only these values change. Each process
builds one ``Settings`` at start-up and fails fast when a value is invalid.
"""

from __future__ import annotations

import os
import tempfile
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cantus.mastering_presets import PRESETS

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this package runs from (``shared/cantus/settings.py`` → repo root)."""
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
"""Committed model checkpoints: package data, so also found when installed (images)."""
MASTERING_PRESETS = tuple(PRESETS)
"""Names of the mastering presets (``cantus.mastering_presets``)."""
SERVED_LYRIC_MODELS = {"en": "lstm", "zh": "lstm"}
"""The lyric LM served per language unless ``lyric_models`` says otherwise: the one whose
lines read better under the same decoder in ``cantus eval lyrics``
(docs/results/lyrics_eval.md, docs/architecture.md)."""
MAX_GRPC_MESSAGE_BYTES = 256 * 1024 * 1024
"""Largest gRPC message the gateway and its clients take: ``GetPiece`` returns every file of
a piece in one message, and a five-minute piece's files (WAV, FLAC, MP3, Opus, MIDI, lead
sheet, pictures) outgrow gRPC's usual limits (docs/results/design_measurements.md)."""


class Topics(BaseSettings):
    """Kafka topic names. Every event is keyed by its piece id."""

    model_config = SettingsConfigDict(env_prefix="CANTUS_TOPIC_")

    compose_requested: str = "cantus.compose.requested"
    melody_bar: str = "cantus.melody.bar"
    harmony_bar: str = "cantus.harmony.bar"
    lyric_line: str = "cantus.lyric.line"
    render_segment: str = "cantus.render.segment"
    piece_completed: str = "cantus.piece.completed"
    dead_letter: str = "cantus.dead-letter"
    station_command: str = "cantus.station.command"
    station_state: str = "cantus.station.state"
    station_feedback: str = "cantus.station.feedback"
    station_segment: str = "cantus.station.segment"
    station_signal: str = "cantus.station.signal"
    station_outcome: str = "cantus.station.outcome"

    def all(self) -> list[str]:
        return list(self.model_dump().values())


S3_FETCH_MAX_WAIT_MS = 1000
"""``kafka_fetch_max_wait_ms`` when the broker keeps its topics on S3 (#22): long enough for
Tansu to reach every partition of a fetch through the store's round trips (see
``Settings._fetch_wait_for_the_storage``); a hop then waits about a quarter of a second at
the median (226 ms against 9 ms on memory://, six consumers, measured by a probe)."""


class Settings(BaseSettings):
    """One object per process. Ports are TCP ports on ``host``; folders are created on use."""

    model_config = SettingsConfigDict(env_prefix="CANTUS_", env_nested_delimiter="__")

    # --- where things listen -------------------------------------------------------------
    host: str = "127.0.0.1"
    broker: str = Field(
        "127.0.0.1:19092",
        description="Kafka bootstrap servers, host:port[,…]; the embedded broker listens on "
        "the first one's port",
    )
    triton_grpc: str = Field(
        "127.0.0.1:18001",
        description="Triton gRPC address host:port; the embedded Triton listens on its port",
    )
    triton_http_port: int = 18000
    triton_metrics_port: int = 18002
    gateway_port: int = 50051
    gateway_metrics_port: int = 19100
    gateway_http_port: int = Field(
        8080, description="HTTP port of the gateway: station HLS streams, feeds, web player"
    )
    service_web_ports: dict[str, int] = Field(
        default_factory=lambda: {
            "melody": 19101,
            "harmony": 19102,
            "lyric": 19103,
            "render": 19104,
            "station": 19105,
        },
        description="HTTP port per stream service: /health and /metrics",
    )

    # --- Kafka ---------------------------------------------------------------------------
    partitions: int = Field(4, ge=1, le=256, description="partitions of every Cantus topic")
    topics: Topics = Field(default_factory=Topics)
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (cantus.security)"
    )
    kafka_sasl_mechanism: str = Field(
        "SCRAM-SHA-512", description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only)"
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA bundle that signed the brokers' certificates (SSL, SASL_SSL)"
    )
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = Field(None, description="key of kafka_ssl_certfile")
    kafka_replication_factor: int = Field(
        1, ge=1, le=32, description="replicas of the topics Faust creates itself (changelogs)"
    )
    broker_storage: str = Field(
        "memory",
        description="the embedded broker's storage: memory (lost when the broker restarts), "
        "local-s3 (a moto S3 server started with the stack: topics survive a broker restart, "
        "not `cantus down`) or s3://BUCKET/ (an S3-compatible store named by the AWS_* "
        "environment: AWS_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, …)",
    )
    broker_s3_port: int = Field(19094, description="port of the local-s3 store (moto server)")
    kafka_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=5000,
        description="longest a consumer's fetch waits for data; the embedded broker (Tansu) "
        "holds a fetch up to this long, so it bounds the latency of each hop (a median 30 ms "
        "at 100, 5 ms at 20), while every idle consumer fetches again as soon as a fetch "
        "ends: at 20 ms the idle stack's polling took half a core (#20). Unless set, "
        f"{S3_FETCH_MAX_WAIT_MS} ms when broker_storage is on S3 (local-s3, s3://): Tansu "
        "spends this one wait on every partition of a fetch, and on S3 a shorter one starves "
        "the partitions late in the fetch",
    )

    # --- the gateway's edge: TLS and bearer tokens (cantus.security) ---------------------
    gateway_tls_cert: Path | None = Field(None, description="PEM certificate chain: serve TLS")
    gateway_tls_key: Path | None = Field(None, description="PEM private key of gateway_tls_cert")
    gateway_auth_token: SecretStr | None = Field(
        None, description="a bearer token clients must send (authorization: Bearer …)"
    )
    gateway_auth_tokens_file: Path | None = Field(
        None, description="file of accepted bearer tokens, one a line (a mounted Secret)"
    )
    gateway_require_auth: bool = Field(
        False, description="refuse to start without TLS and at least one token (production)"
    )
    gateway_client_ca: Path | None = Field(
        None, description="clients (cantus compose, bench): CA of the gateway's certificate; TLS"
    )
    gateway_client_token: SecretStr | None = Field(
        None, description="clients: bearer token sent with every call (implies TLS)"
    )
    gateway_health_port: int | None = Field(
        None,
        description="extra plaintext port serving only grpc.health.v1 (kubelet gRPC probes "
        "speak no TLS); None: health is served on gateway_port only",
    )

    # --- `cantus up`'s supervisor (cantus.supervisor, #22) --------------------------------
    # Kubernetes starts at 10 s and caps at 5 min; one machine's services start in seconds,
    # so the same doubling runs on a shorter scale.
    startup_timeout_s: float = Field(
        120.0,
        gt=0,
        description="cantus up: longest wait for Triton or a service to be healthy (the "
        "gateway: half of it); a machine busy with other work may need more",
    )
    supervisor_initial_backoff_s: float = Field(
        1.0, gt=0, description="wait before restarting a component after its first crash"
    )
    supervisor_max_backoff_s: float = Field(
        30.0, gt=0, description="longest wait between restarts (the doubling stops here)"
    )
    supervisor_healthy_reset_s: float = Field(
        60.0, gt=0, description="a component up this long has its crash count reset"
    )
    supervisor_max_crash_loops: int = Field(
        5, ge=1, description="crashes in a row (none up healthy_reset_s) before giving up"
    )

    # --- folders -------------------------------------------------------------------------
    state_dir: Path = Field(REPO_ROOT / ".cantus", description="run files, logs, service state")
    stack_registry: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / f"cantus-stacks-{os.getuid()}",
        description="where stacks owned by a process (a test session's, a chaos campaign's) "
        "record their process groups, so the next start stops those of a dead owner",
    )
    data_dir: Path = Field(REPO_ROOT / ".cantus" / "pieces", description="finished pieces")
    triton_model_repository: Path = REPO_ROOT / "triton_models"

    # --- requests ------------------------------------------------------------------------
    # A five-minute piece (ComposeRequest.duration_seconds up to 300) is 125 bars at 100 BPM
    # in 4/4 and 250 at 200 BPM: 256 lets every such request through but the fastest tempi in
    # the shortest meters.
    max_bars: int = Field(256, ge=1, le=1000, description="largest piece a request may ask for")
    # Long pieces render one segment per segment_bars bars, then their files (audio of up to
    # five minutes, a lead sheet of several pages): 900 s leaves room for 256 bars.
    compose_timeout_s: float = Field(900.0, gt=0, description="give up on a piece after this")
    # A piece waits its turn in the services' queues; past a few minutes' work, more pieces
    # only make every piece late. Refusing at once tells a client to come back. 0: sized to
    # the machine, PIECES_IN_FLIGHT_PER_CORE per CPU core this process may run on.
    gateway_max_pieces_in_flight: int = Field(
        0,
        ge=0,
        description="Compose calls one gateway streams at once; more are refused at once with "
        "RESOURCE_EXHAUSTED and a retry hint. 0 (default): 4 per CPU core of this machine "
        "(PIECES_IN_FLIGHT_PER_CORE)",
    )
    gateway_retry_after_s: float = Field(
        5.0, gt=0, description="retry hint sent with RESOURCE_EXHAUSTED (trailing metadata)"
    )

    # --- melody model --------------------------------------------------------------------
    melody_model_name: str = "melody_lm"
    melody_score_model_name: str = Field(
        "melody_score", description="Triton model scoring the bars after a gap (edits, #18)"
    )
    edit_candidates: int = Field(
        4,
        ge=1,
        le=16,
        description="candidates decoded for the bars that close a regenerated span; the one "
        "after which the following bars are likeliest is kept (cantus.melody.infill)",
    )
    melody_return_candidates: int = Field(
        4,
        ge=1,
        le=16,
        description="candidates decoded for a phrase that leads into a return of the form "
        "(the B of AABA); the one after which the return's first bars are likeliest is kept, "
        "of those in key where melody_key_candidates > 1 (1: the first, no choice)",
    )
    # How the key is held since session 21, with the scale-degree checkpoint and no guidance
    # (melody_guidance 1): each new phrase chosen among 3 unguided candidates, the first that
    # keeps its key area in key and neither hammers one note nor leaps past an octave (one
    # guided decode more where none does), and a phrase leading into a return the likeliest
    # of those in key. cantus eval realness, 480 pieces: the key heard as asked in 99 % (every
    # key 19 of 20 or more), the classifier 75 / 72 %; guidance 2 as served before: 97 % (A
    # minor 17), 79 / 76 %, the tonic and dominant over-used and the 6th and 7th starved. Two
    # candidates were alike on 240 pieces (70 / 71 %, 99 %); three are what the official run
    # measured (docs/results/melody_realness_decomposition.md, sessions 20-21).
    melody_key_candidates: int = Field(
        3,
        ge=1,
        le=8,
        description="candidates decoded for each new phrase that does not lead into a return; "
        "the first that keeps its key area in the key and does not hammer one note or leap "
        "more than an octave is kept, "
        "and one guided decode more where none does (cantus.melody.key_choice; 1: no choice, "
        "the key left to melody_guidance)",
    )
    melody_concurrency: int = Field(
        8, ge=1, le=64, description="pieces one melody process decodes at once"
    )
    melody_checkpoint: Path = CHECKPOINTS / "melody_lm.pt"
    melody_max_batch: int = Field(32, ge=1, le=256)
    # Intra-op threads of the melody model in a Triton started here (None: its config.pbtxt
    # value, meant for a Triton with cores of its own). The local stack runs every service on
    # the same cores, and two OpenMP threads stall at each barrier whenever another process
    # holds one of them (docs/results/design_measurements.md), so it takes 1.
    melody_torch_threads: int | None = Field(1, ge=1, le=64)
    # Off since the form issue (#14): the bonus lifted key agreement by clustering notes on
    # triad tones (docs/results/melody_realness.md); the key now comes from the model
    # (heard-key labels) and guidance. Kept as a setting for comparisons.
    melody_tonal_emphasis: float = Field(
        0.0,
        ge=0.0,
        le=4.0,
        description="logit bonus (nats) on the beats for the pitches that establish the key",
    )
    # Measured in session 7 (#14) on form-composed pieces against held-out tunes
    # (docs/results/melody_realness.md). The scale mask removed every chromatic note (real
    # tunes have about 1 %) and gave the classifier a tell: off. The whole distribution
    # (top-p 1) moved pitch classes a little closer to the corpus but sampled more leaps
    # from the tail: on 120 eight-bar pieces steps 45 -> 41 % and direction changes 57 ->
    # 60 % (real: 49 %, 50 %), the zig-zag a listener hears first. So top-p stays 0.95.
    # Tried again in session 11 with session 10's checkpoint, top-p 1 and guidance 2.5 on
    # 480 pieces (docs/results/melody_realness_top_p1.md, against melody_realness.md): range
    # 13.4 -> 15.4 semitones (real 15.1), direction changes 58.6 -> 57.7 % (50.3), rests and
    # syncopation nearer the corpus, but steps 46.6 -> 44.1 % (50.3), smooth joins at bar
    # lines 90.9 -> 88.0 % (92.7), the boosting classifier 88 -> 89 %, and the key still
    # missed for two keys (G major 16, C minor 17 of 20). Kept at 0.95.
    # Session 19, with the contour embedding (the checkpoint no longer zig-zags by itself),
    # 240 pieces each (docs/results/melody_realness_decomposition.md): top-p 1 against 0.95
    # at guidance 2, the boosting classifier 81 -> 75 %, logistic 80 -> 76 %, range 13.4 ->
    # 14.8 semitones (real 15.1), repeated notes 18.0 -> 16.5 % (16.6), top pitch class
    # 32.6 -> 31.0 % (27.6), syncopation 0.0 -> 0.2 % (0.3), rests 1.3 -> 2.0 % (2.7), while
    # steps (45.5 / 45.1 %) and direction changes (53.8 / 54.6 %) held: 1.
    melody_top_p: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="nucleus sampling of the melody (1: the whole distribution)",
    )
    melody_key_constraint: bool = Field(
        False, description="mask the melody's pitches to the key's scale (raised 6th, 7th in minor)"
    )
    # Chosen on 72 form-composed pieces per value (cantus eval realness, all 24 keys): key
    # heard as asked 65 % (1.0), 67 % (1.5), 89 % (2.0), 86 % (3.0); repeated notes, steps
    # and top pitch class closest to the corpus at 2.0, the classifier no better at any.
    # Session 10's checkpoint, 480 pieces (20 per key): 2.0 hears 95.8 % as asked, the worst
    # keys 17 of 20; 2.5 hears 98.1 %, every key 18 of 20 or more, but its melodies move
    # further from the corpus (logistic classifier 80 -> 83 %, steps 46.4 -> 45.5 %,
    # direction changes 58.1 -> 58.9 %; real 50.8 % and 50.8 %). Kept at 2.0: the key goal is
    # not bought with the melody. (Session 11: with top-p 1, 2.5 heard 97 % of 480 pieces
    # as asked, G major 16 and C minor 17 of 20; 2.0 at top-p 1, 94.4 %: see melody_top_p.)
    # Session 21: 1 (none), the key held by choosing phrases instead (melody_key_candidates):
    # guidance raises what the key makes likelier than no key, the tonic and the dominant,
    # and that pitch profile was what most told the melodies from real ones.
    melody_guidance: float = Field(
        1.0,
        ge=1.0,
        le=4.0,
        description="classifier-free guidance on the key for pitches (1: none); a guided "
        "piece takes two of melody_lm's batch slots",
    )

    # The checkpoint reads fill-in-the-middle prompts (FIM_SUF <after> FIM_MID <before>,
    # suffix first). On 200 held-out gaps (cantus eval infill, docs/results/infill.md) FIM
    # gaps join both sides as smoothly as left-to-right ones, but not better than what edits
    # do without it: the best of 8 left-to-right gaps by the bars after them joins the right
    # edge smoothly 97.0 % of the time against 95.5 % among FIM gaps, and the real middles
    # read from a FIM prompt are a little less likely (0.682 nats/token against 0.673 left to
    # right, the gap's length known). So edits and the form composer prompt left to right.
    melody_fill_in_middle: bool = Field(
        False,
        description="prompt the melody model with the bars after a gap or a phrase "
        "(fill-in-the-middle; only with a checkpoint trained for it)",
    )
    # Session 24: the B of a 16-bar AABA sat 0.1 semitone below its A with the candidates
    # kept as they came; the held-out tunes' second strain sits 1.5 above their first
    # (docs/results/form_register.md, cantus.melody.register).
    melody_register_contrast: bool = Field(
        True,
        description="a contrasting section's phrases are chosen, among their candidates, "
        "near a register drawn from the corpus's second strains (cantus.melody.register)",
    )
    # Session 26: chosen among three or four candidates, the B climbed +0.74 semitones over its
    # A where the corpus's second strains climb +1.71 (docs/results/form_register.md).
    melody_register_window: bool = Field(
        True,
        description="with melody_register_contrast, a contrasting section's phrases are "
        "decoded inside a window of pitches around their register aim "
        "(cantus.melody.register.register_pitch_range)",
    )
    # Session 33: the upbeat into a return was decoded blind to it (joins into a repeated
    # bar by a step or less: 40 % against the held-out tunes' 56 %); cantus.melody.lead_in.
    melody_lead_in: bool = Field(
        True,
        description="a phrase's upbeat into bars already decided (a return, an echo) is drawn "
        "again from the model's posterior given them (cantus.melody.lead_in)",
    )
    # Session 26: every key area read in its key from its first phrase on, where real tunes'
    # first four bars do in 80 % (major) and 61 % (minor); the kept openings leaned on the
    # triad (docs/results/melody_realness_decomposition.md, cantus.melody.key_choice).
    melody_corpus_key_clarity: bool = Field(
        True,
        description="a phrase chosen in key need only leave its key area as clear in its key "
        "as most real tunes are at that length (cantus.melody.key_choice.KEY_CLARITY_FLOORS); "
        "off: the key area must read in the asked key from its first phrase on",
    )
    # Session 27: composed pieces opened on the downbeat every time, where 71 % of the
    # corpus's tunes open with a pickup (cantus.melody.openings).
    melody_pickups: bool = Field(
        True,
        description="a composed piece opens with a pickup bar before its plan as often as the "
        "corpus's tunes of its style and meter do (cantus.melody.openings); off: every piece "
        "opens on the downbeat",
    )
    # Session 28: every 16-bar piece had the same form (A A' B A''), which 6 % of the
    # corpus's tunes have (cantus.melody.phrase_patterns).
    melody_corpus_forms: bool = Field(
        True,
        description="a composed piece of 8, 12, 16 or 20 bars whose request leaves the form "
        "at auto draws its phrase pattern as often as the corpus's tunes of its style and "
        "meter are shaped so (cantus.melody.phrase_patterns); off: auto picks the form by "
        "length alone (16 bars: AABA)",
    )

    # --- harmony model -------------------------------------------------------------------
    harmony_model_name: str = "harmony"
    harmony_checkpoint: Path = CHECKPOINTS / "harmony_gru.pt"
    harmony_timeout_s: float = Field(
        10.0,
        gt=0,
        description="longest the harmony service waits for Triton before it "
        "falls back to the rule-based harmoniser for a bar",
    )

    # --- lyric model ----------------------------------------------------------------------
    lyric_model_name: str = Field(
        "lyric_lm", description="Triton model answering the lyric scoring interface"
    )
    lyric_models: dict[str, str] = Field(
        default_factory=lambda: dict(SERVED_LYRIC_MODELS),
        description="lyric LM per language, transformer or lstm (cantus.lyrics.LYRIC_MODELS): "
        "the checkpoint lyric_lm serves and the lexicon the lyric service decodes with; "
        "Triton and the lyric service must be given the same value",
    )
    lyric_torch_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="intra-op threads of the lyric service's theme embedder (the sentence "
        "model that chooses among a line's finished beams); one, as every process of a stack "
        "on shared cores (torch's default is every core; on the 2-core stack one thread took "
        "6-8 % less of the lyric service's CPU for the same lines)",
    )
    lyric_ci: bool = Field(
        True,
        description="Mandarin lyrics: each section of up to 16 bars carries the ci stanza "
        "(词牌) that fits its melody where one does (cantus.lyrics.ci); the lyric service "
        "waits for the section's bars before its first line",
    )
    lyric_melisma: bool = Field(
        False,
        description="sing a short note that follows its predecessor within a beat on the "
        "same syllable (default: one syllable per note onset)",
    )

    # --- render --------------------------------------------------------------------------
    segment_bars: int = Field(4, ge=1, le=64, description="bars per rendered segment")
    render_concurrency: int = Field(
        4, ge=1, le=64, description="pieces one render process works on at once"
    )
    segment_audio: bool = Field(
        True, description="embed each segment's mastered audio in its RenderSegment event"
    )
    segment_audio_kbps: int = Field(
        48,
        ge=8,
        le=256,
        description="Ogg Opus bit rate of segment audio, kbit/s (lowered for long segments "
        "so that an event stays under ~512 KB)",
    )
    loudness_preset: str = Field(
        "streaming",
        description="mastering preset: streaming (-14 LUFS, -1 dBTP) or broadcast (-23 LUFS)",
    )
    audio_formats: list[str] = Field(
        default_factory=lambda: ["wav", "flac", "mp3", "opus"],
        description="audio files stored with each piece (cantus.render.exports.EXPORT_FORMATS)",
    )
    humanise: bool = Field(True, description="seeded velocity and micro-timing humanisation")
    leadsheet: bool = Field(
        True, description="store piece.musicxml, and piece.pdf/piece.png engraved by LilyPond"
    )

    # --- stations ------------------------------------------------------------------------
    station_priorities: bool = Field(
        True,
        description="a station asks for its pieces by need (urgent: nothing in hand and less "
        "than its prebuffer ahead; background: two pieces in hand), and the melody and render "
        "services serve the most pressing first (cantus.scheduling); off: every "
        "station piece is normal, served in arrival order (kept for comparisons)",
    )
    # A station's snapshot is one Kafka record (1 MB at most), so it holds a window of its
    # program, not all of it. With the defaults it measures ~0.17 MB for 16-bar pieces and
    # ~0.31 MB at most for any length (1000 fingerprints of at most 256 one-byte steps, and
    # ~100 entries of ~250 B; tests/stations/test_snapshot.py). The maxima keep even the
    # largest settings near 0.75 MB: 2000 fingerprints of 256 steps and 500 entries.
    station_history_pieces: int = Field(
        100,
        ge=1,
        le=500,
        description="played or rejected pieces a station snapshot keeps (its feeds' history) "
        "besides those still to play: about an hour of 16-bar pieces",
    )
    station_fingerprints: int = Field(
        1000,
        ge=1,
        le=2000,
        description="most recent accepted melodies a station checks a new one against for "
        "near-duplicates: half a day of 16-bar pieces, longer than a listener stays",
    )
    station_fingerprint_intervals: int = Field(
        256,
        ge=16,
        le=256,
        description="steps of a melody its fingerprint keeps (the first ones; the check "
        "compares as many of the new melody's): 32 bars of quavers, so exact for most pieces",
    )
    # One value for both ends of the segment topic: its retention (deploy/k8s topics.yaml,
    # checked by cantus.deploy.manifests) and the gateway's in-memory window. A gateway that
    # kept more than the topic retains would serve a longer playlist than a replica that
    # (re)started from the topic, so replicas would disagree about the same station.
    station_segment_retention_s: int = Field(
        3600,
        ge=60,
        le=86400,
        description="seconds of HLS segments the cantus.station.segment topic retains and "
        "the gateway keeps (and lists) per station",
    )
    render_segment_retention_s: int = Field(
        3600,
        ge=60,
        le=86400,
        description="seconds the render service keeps each render segment's audio in the "
        "segment store (cantus.segment_store) for the clients and stations that stream it",
    )
    render_lossless_segment_retention_s: int = Field(
        600,
        ge=60,
        le=86400,
        description="the same for lossless (FLAC) segment audio, about 15 times Opus's bytes: "
        "the stations that ask for it read each segment as it is published (a restarted "
        "station reads a piece's stored file instead)",
    )

    # --- piece store ---------------------------------------------------------------------
    s3_bucket: str | None = Field(
        None, description="keep finished pieces in this S3 bucket instead of data_dir"
    )
    s3_prefix: str = Field("pieces", description="key prefix of the pieces in the S3 bucket")
    s3_endpoint: str | None = Field(
        None, description="S3-compatible endpoint URL (MinIO, Ceph, R2, …); None for AWS"
    )
    s3_region: str | None = None

    # --- processing ----------------------------------------------------------------------
    max_attempts: int = Field(4, ge=1, description="tries of a failing event before dead-letter")
    # A Triton restart took 37 s to 310 s on the loaded 2-core machine (docs/results/
    # reliability.md). The wait holds one partition's events, not the consumer: Faust polls
    # Kafka from its own thread (its broker_max_poll_interval is 1000 s), and the gateway's
    # compose_timeout_s (900 s) still bounds what a client waits.
    unavailable_wait_s: float = Field(
        600.0,
        ge=0,
        description="how long a service waits, retrying, for an unavailable model server "
        "before its tries count as failures",
    )

    @field_validator("lyric_models")
    @classmethod
    def _known_lyric_models(cls, value: dict[str, str]) -> dict[str, str]:
        from cantus.lyrics import LYRIC_MODELS, LYRICS_LANGUAGES

        merged = {**SERVED_LYRIC_MODELS, **value}
        for language, model in merged.items():
            if language not in LYRICS_LANGUAGES:
                raise ValueError(f"lyric_models: {language!r} is not one of {LYRICS_LANGUAGES}")
            if model not in LYRIC_MODELS:
                raise ValueError(
                    f"lyric_models: {model!r} for {language} is not one of {LYRIC_MODELS}"
                )
        return merged

    @field_validator("loudness_preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in MASTERING_PRESETS:
            raise ValueError(
                f"{value!r} is not a mastering preset: expected one of {MASTERING_PRESETS}"
            )
        return value

    @field_validator("gateway_max_pieces_in_flight")
    @classmethod
    def _sized_to_the_machine(cls, value: int) -> int:
        return value or pieces_in_flight_for_cores(usable_cpus())

    @field_validator("audio_formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        formats = ("wav", "wav24", "flac", "flac24", "ogg", "opus", "mp3")  # EXPORT_FORMATS
        unknown = [fmt for fmt in value if fmt not in formats]
        if unknown:
            raise ValueError(f"unknown audio formats {unknown}: expected some of {formats}")
        return list(dict.fromkeys(value))

    @field_validator("kafka_security_protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if value.upper() not in protocols:
            raise ValueError(f"{value!r} is not a Kafka security protocol: expected {protocols}")
        return value.upper()

    @field_validator("kafka_sasl_mechanism")
    @classmethod
    def _known_mechanism(cls, value: str) -> str:
        mechanisms = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
        if value.upper() not in mechanisms:
            raise ValueError(f"{value!r} is not a SASL mechanism: expected one of {mechanisms}")
        return value.upper()

    @model_validator(mode="after")
    def _edge_security_complete(self) -> Settings:
        # Half a configuration is a mistake to report at start-up, not a silent plaintext.
        if (self.gateway_tls_cert is None) != (self.gateway_tls_key is None):
            raise ValueError("gateway_tls_cert and gateway_tls_key must be set together")
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "kafka_sasl_username and kafka_sasl_password"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile must be set together")
        return self

    @model_validator(mode="after")
    def _fetch_wait_for_the_storage(self) -> Settings:
        # Tansu (0.6.0-133) gives all the partitions of one fetch request a single
        # max_wait, spent partition after partition; a partition reached after it is
        # spent has its S3 listing thrown away, so it gets nothing. On memory:// that
        # costs microseconds; on S3 each partition costs round trips to the store, and
        # with 20 ms the partitions late in every consumer's request were never read:
        # the local-s3 stall of #22 (10 consumer groups of 12 partitions on moto read
        # 1 of 120 partitions in 40 s at 20 ms, and 120 of 120 in 2.7 s at 1,000 ms).
        if "kafka_fetch_max_wait_ms" not in self.model_fields_set and (
            self.broker_storage != "memory"
        ):
            self.kafka_fetch_max_wait_ms = S3_FETCH_MAX_WAIT_MS
        return self

    @field_validator("broker_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if value in ("memory", "local-s3") or (
            value.startswith("s3://") and value[len("s3://") :].strip("/")
        ):
            return value
        raise ValueError(
            f"{value!r} is not a broker storage: memory, local-s3 or s3://BUCKET/ (the "
            "embedded Tansu has no postgres:// engine)"
        )

    @field_validator("broker", "triton_grpc")
    @classmethod
    def _has_port(cls, value: str) -> str:
        for address in value.split(","):
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{address!r} is not host:port")
        return value

    @property
    def broker_port(self) -> int:
        """Port of the embedded broker: ``broker``'s first address's (one setting, so the
        stack and its clients cannot end up on different ports)."""
        return int(self.broker.split(",")[0].rpartition(":")[2])

    @property
    def triton_grpc_port(self) -> int:
        """gRPC port of the embedded Triton: ``triton_grpc``'s."""
        return int(self.triton_grpc.rpartition(":")[2])

    @cached_property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @cached_property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def web_port(self, service: str) -> int:
        return self.service_web_ports[service]


PIECES_IN_FLIGHT_PER_CORE = 4
"""The gateway's default in-flight limit per CPU core (#22). Measured on the 2-core
development machine under the load of other work (1-minute load 25 median): of 32 4-bar
pieces admitted at once, 15 finished within the 900 s ``compose_timeout_s`` (a piece alone:
33 s), so about 8 admitted pieces do; docs/results/reliability.md, "Clients"."""


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity, as a container's cpuset limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def pieces_in_flight_for_cores(cores: int) -> int:
    """The default ``gateway_max_pieces_in_flight`` on a machine of ``cores`` cores."""
    return PIECES_IN_FLIGHT_PER_CORE * max(1, cores)


def load_settings() -> Settings:
    """Settings from the environment; raises ``pydantic.ValidationError`` naming the bad value."""
    return Settings()
