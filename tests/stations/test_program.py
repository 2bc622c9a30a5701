"""A station's program: buffer, repeats rejected, plans followed, playback clock."""

import uuid

from cantus.requests import validate_compose_request
from cantus.stations.plans import State, plan_session
from cantus.stations.program import Program, new_status
from cantus.v1 import events_pb2 as pb

CONFIG = "styles: {folk: 1}\nbars: 4\nbuffer_pieces: 2\n"


def fill(program):
    made = []
    while program.wants_piece(now_ns=0):
        made.append(program.next_request(uuid.uuid4().hex))
    return made


def test_buffer_keeps_pieces_ahead_and_requests_differ():
    program = Program(new_status("s", CONFIG))
    made = fill(program)
    assert len(made) == 3  # the piece to play next and two more
    seeds = {request.seed for _, request in made}
    assert len(seeds) == 3
    assert all(request.bars == 4 and request.style == "folk" for _, request in made)


def test_a_repeated_melody_is_rejected_and_replaced():
    program = Program(new_status("s", CONFIG))
    (first, _), (second, _), (third, _) = fill(program)
    tune = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60]
    assert program.melody_done(first.piece_id, tune)
    assert not program.melody_done(second.piece_id, [p + 5 for p in tune])  # transposed copy
    assert "near-duplicate" in program.entry(second.piece_id).reason
    assert program.melody_done(third.piece_id, [60, 67, 60, 67, 59, 65, 59, 65, 60, 72])
    assert len(fill(program)) == 1  # the rejected piece is replaced


def test_plan_station_asks_for_each_step_then_stops():
    steps = plan_session(State(110, 0.8, 0.9), State(65, 0.1, 0.2), pieces=3, bars=4)
    program = Program(new_status("p", CONFIG, steps))
    made = fill(program)
    assert [r.tempo_bpm for _, r in made] == [110, 87.5, 65]
    assert [r.mode for _, r in made] == ["major", "major", "minor"]
    program.reject(made[1][0].piece_id, "outside plan step 1")
    ((again, request),) = fill(program)
    assert again.plan_step == 1 and request.tempo_bpm == 87.5
    assert program.plan_finished() and not program.wants_piece(now_ns=0)


def test_completion_and_streaming_order():
    program = Program(new_status("s", CONFIG))
    (a, _), (b, _), _ = fill(program)
    for entry in (a, b):
        program.melody_done(entry.piece_id, [60 + i * (entry is a) for i in range(12)])
    program.completed(b.piece_id, pb.PieceCompleted(duration_seconds=8, integrated_lufs=-14))
    assert program.entry(b.piece_id).status == "ready"
    assert program.next_to_stream().piece_id == a.piece_id  # program order, not arrival


def test_playback_starts_once_the_prebuffer_is_in():
    program = Program(new_status("s", CONFIG + "prebuffer_seconds: 10\n"))
    for second in range(2):
        program.segment_published(4.0, now_ns=(1 + second) * 10**9)
    assert not program.status.stream_started_unix_ns
    program.segment_published(4.0, now_ns=3 * 10**9)
    assert program.status.stream_started_unix_ns == 3 * 10**9
    program.tick(now_ns=5 * 10**9)
    assert program.status.ahead_seconds == 10.0


def test_underrun_is_counted_once_per_dry_spell():
    program = Program(new_status("s", CONFIG + "prebuffer_seconds: 4\n"))
    start = 10**9
    program.segment_published(4.0, now_ns=start)
    program.tick(now_ns=start + 2 * 10**9)
    assert program.status.ahead_seconds == 2.0 and program.status.underruns == 0
    for late in (6, 7, 8):  # dry for three ticks: one underrun
        program.tick(now_ns=start + late * 10**9)
    assert program.status.underruns == 1 and program.status.ahead_seconds == 0.0
    program.segment_published(4.0, now_ns=start + 9 * 10**9)
    program.tick(now_ns=start + 10 * 10**9)  # playback went on from where it stalled (4 s)
    assert program.status.ahead_seconds == 2.0
    program.tick(now_ns=start + 14 * 10**9)
    assert program.status.underruns == 2


def test_requests_carry_the_station_loudness_preset():
    program = Program(new_status("s", CONFIG + "loudness_preset: broadcast\n"))
    assert {request.loudness_preset for _, request in fill(program)} == {"broadcast"}


def test_requests_carry_a_palette_from_the_station_mix():
    program = Program(new_status("s", CONFIG + "palettes: {piano: 1, lullaby: 1}\n"))
    assert {request.palette for _, request in fill(program)} <= {"piano", "lullaby"}
    default = Program(new_status("s", CONFIG))
    assert {request.palette for _, request in fill(default)} == {""}  # style and mood pick


def test_requests_carry_a_form_from_the_station_mix():
    config = "styles: {folk: 1}\nbars: 32\nbuffer_pieces: 4\n"
    program = Program(new_status("s", config + "forms: {aabb: 1, verse_chorus: 2}\n"))
    assert program.config.forms == {"AABB": 1, "verse-chorus": 2}  # canonical names
    requests = [request for _, request in fill(program)]
    assert {request.form for request in requests} <= {"AABB", "verse-chorus"}
    for request in requests:  # the gateway's validation plans the chosen form
        spec = validate_compose_request(request, max_bars=256, urgent_allowed=True).spec
        assert spec.form.name == request.form
    default = Program(new_status("s", CONFIG))
    assert {request.form for _, request in fill(default)} == {""}  # auto, by length


def test_requests_ask_for_the_stream_audio_only_unless_the_config_asks_for_more():
    plain = Program(new_status("s", CONFIG))
    _, request = plain.next_request(uuid.uuid4().hex)
    assert list(request.outputs) == ["opus"]  # what a restarted station reads back
    spec = validate_compose_request(request, max_bars=64, urgent_allowed=True).spec
    assert list(spec.outputs) == ["opus"]
    assert spec.segment_audio == "flac"  # lossless segments: the stream's AAC is their one encode
    richer = Program(new_status("s", CONFIG + "outputs: [leadsheet, opus, mp3]\n"))
    _, request = richer.next_request(uuid.uuid4().hex)
    assert list(request.outputs) == ["opus", "leadsheet", "mp3"]


def test_a_piece_is_asked_for_by_need_first_urgent_then_normal_then_background():
    program = Program(new_status("s", CONFIG + "prebuffer_seconds: 10\n"))
    made = fill(program)
    assert [r.priority for _, r in made] == [
        pb.PRIORITY_URGENT,  # nothing to hear until it comes
        pb.PRIORITY_NORMAL,  # next to play
        pb.PRIORITY_BACKGROUND,  # a piece further on
    ]
    for entry, _ in made:
        program.entry(entry.piece_id).status = "streamed"
    # Streamed, with a prebuffer's lead ahead of playback: the next is only next to play.
    for second in range(3):
        program.segment_published(4.0, now_ns=(1 + second) * 10**9)
    program.tick(now_ns=3 * 10**9)
    assert program.priority_of_next(now_ns=3 * 10**9) == pb.PRIORITY_NORMAL
    # Running dry: less than the prebuffer ahead and nothing in hand.
    assert program.priority_of_next(now_ns=8 * 10**9) == pb.PRIORITY_URGENT


def test_requests_carry_lyrics_in_the_station_language_and_register_on_drawn_themes():
    config = "styles: {folk: 1}\nbars: 8\nbuffer_pieces: 7\nlyrics: true\n"
    themes = "lyrics_themes: [河上的月光, 春天的早晨, a road home]\n"
    zh = "lyrics_language: zh\nlyrics_register: ci\n"
    program = Program(new_status("s", config + themes + zh))
    requests = [request for _, request in fill(program)]
    drawn = {request.lyrics_theme for request in requests}
    assert drawn == {"河上的月光", "春天的早晨", "a road home"}
    for request in requests:  # each one as the gateway would take it
        spec = validate_compose_request(request, max_bars=64, urgent_allowed=True).spec
        assert (spec.lyrics_language, spec.lyrics_register) == ("zh", "ci")
        assert spec.vocals  # sung, as any piece with lyrics
    one_theme = Program(new_status("s", config + "lyrics_theme: the sea at night\n"))
    asked = [request for _, request in fill(one_theme)]
    assert {(r.lyrics_theme, r.lyrics_language, r.lyrics_register) for r in asked} == {
        ("the sea at night", "en", "")
    }
    # a theme draws nothing: the seeds are those of the same station without lyrics
    plain = Program(new_status("s", "styles: {folk: 1}\nbars: 8\nbuffer_pieces: 7\n"))
    assert [r.seed for r in asked] == [r.seed for _, r in fill(plain)]
