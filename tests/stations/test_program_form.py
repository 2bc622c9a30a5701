"""Stations' pieces get a form plan like any request (auto, through the same validation), and
the playlist feed shows it."""

import json
import uuid

from cantus.requests import validate_compose_request
from cantus.stations.feeds import entry_metadata, form_metadata, json_feed
from cantus.stations.program import Program, new_status
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb
from cantus.v1 import station_pb2 as st

CONFIG = "styles: {folk: 1}\nbars: 16\nbuffer_pieces: 1\n"


def test_a_station_piece_is_planned_and_its_entry_keeps_the_plan():
    program = Program(new_status("s", CONFIG))
    piece_id = uuid.uuid4().hex
    _, request = program.next_request(piece_id)
    assert request.form == ""  # auto: the validation picks the form by length
    spec = validate_compose_request(request, max_bars=256, urgent_allowed=True).spec
    # a 16-bar piece's form drawn per seed as the corpus's tunes are shaped: one section a
    # phrase (after a pickup bar, where the seed draws one)
    phrases = [s.bar_count for s in spec.form.sections if s.treatment != "pickup"]
    assert phrases == [4, 4, 4, 4]
    program.accepted(piece_id, spec)
    assert program.entry(piece_id).form == spec.form
    form = entry_metadata(program.entry(piece_id))["form"]
    assert form["name"] == spec.form.name
    assert [(s["label"], s["first_bar"], s["bar_count"]) for s in form["sections"]] == [
        (s.label, s.first_bar, s.bar_count) for s in spec.form.sections
    ]
    # a phrase is too short for a key area of its own
    assert {s["key_area"] for s in form["sections"]} == {"home"}
    status = program.status
    status.program[0].stream_start_seconds = 0
    feed = json.loads(json_feed(status))
    assert feed["pieces"][0]["form"]["name"] == spec.form.name


def test_an_entry_without_a_plan_has_no_form():
    assert entry_metadata(st.ProgramEntry(piece_id="a"))["form"] is None
    assert form_metadata(pb.FormPlan()) is None


def test_form_keys_are_named_with_their_mode():
    request = api.ComposeRequest(key="A", mode="minor", bars=32, pickup=False)
    spec = validate_compose_request(request, max_bars=64, urgent_allowed=True).spec
    keys = [s["key"] for s in form_metadata(spec.form)["sections"]]
    assert keys == ["A minor", "A minor", "E minor", "A minor"]
