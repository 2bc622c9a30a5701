"""The gateway's HTTP side shows a piece's form: /compose/events takes form and duration and
its first event carries the plan; each melody bar's JSON names its section."""

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer

from cantus.events.codec import new_meta
from cantus.requests import validate_compose_request
from cantus.settings import Settings
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb
from services.gateway.stations import StationDirectory
from services.gateway.web import GatewayWeb, event_to_json


class RecordingProducer:
    def __init__(self):
        self.sent = []

    async def send_and_wait(self, topic, value, key=None, headers=None):
        self.sent.append((topic, key, value))


class FinishingRouter:
    """Subscribers get the piece's completion at once, so the event stream ends."""

    def subscribe(self, piece_id, replay=False):
        queue = asyncio.Queue()
        queue.put_nowait(pb.PieceCompleted(meta=new_meta(piece_id, 0, "render")))
        return queue

    def unsubscribe(self, piece_id, queue):
        pass

    async def for_client(self, message):
        return message


def run(check):
    async def main():
        settings = Settings()
        producer = RecordingProducer()
        web = GatewayWeb(settings, producer, FinishingRouter(), StationDirectory(settings))
        async with TestClient(TestServer(web.app())) as client:
            await check(client, producer)

    asyncio.run(main())


def first_event(text: str) -> dict:
    return json.loads(text.split("\n\n")[0].removeprefix("data: "))


def test_compose_events_take_form_and_duration_and_announce_the_plan():
    async def check(client, producer):
        response = await client.get("/compose/events?form=rondo&duration=60&tempo=120&pickup=0")
        assert response.status == 200
        first = first_event(await response.text())
        assert first["bars"] == 32  # 60 s at 2 s a bar
        assert first["form"]["name"] == "rondo"
        sections = first["form"]["sections"]
        assert sum(s["bar_count"] for s in sections) == 32
        # rondo in 4-bar sections: B, one phrase, stays home (form.MIN_KEY_AREA_BARS)
        assert sections[0]["label"] == "A" and sections[1]["key"] == "C major"
        ((_, _, value),) = producer.sent
        assert pb.ComposeRequested.FromString(value).spec.form.name == "rondo"

    run(check)


def test_compose_events_take_a_pickup():
    async def check(client, producer):
        response = await client.get("/compose/events?form=AABA&bars=16&pickup=on")
        assert response.status == 200
        first = first_event(await response.text())
        assert first["bars"] == 17
        assert [s["label"] for s in first["form"]["sections"]][:2] == ["pickup", "A"]
        bad = await client.get("/compose/events?pickup=maybe")
        assert bad.status == 400 and (await bad.text()).startswith("pickup: ")

    run(check)


def test_compose_events_name_the_bad_field():
    async def check(client, producer):
        bad_form = await client.get("/compose/events?form=sonata")
        assert bad_form.status == 400 and (await bad_form.text()).startswith("form: ")
        both = await client.get("/compose/events?duration=60&bars=16")
        assert both.status == 400
        assert (await both.text()).startswith("duration (duration_seconds): ")
        unreadable = await client.get("/compose/events?duration=soon")
        assert unreadable.status == 400
        assert producer.sent == []

    run(check)


def test_melody_bars_name_their_section():
    for pickup, opening in ((False, []), (True, ["pickup"])):
        request = api.ComposeRequest(pickup=pickup, form="AABA")
        spec = validate_compose_request(request, max_bars=64).spec
        labels = [
            event_to_json(pb.MelodyBar(meta=new_meta("p", index, "melody"), spec=spec))["section"]
            for index in range(spec.bars)
        ]
        assert labels == opening + ["A"] * 4 + ["A'"] * 4 + ["B"] * 4 + ["A''"] * 4
    assert event_to_json(pb.MelodyBar(meta=new_meta("p", 0, "melody")))["section"] is None


def test_versions_of_a_piece_are_served_beside_each_other(tmp_path, monkeypatch):
    """/pieces/ID/versions lists them, /pieces/ID/vN/NAME serves one version's files (the
    player's side-by-side view, issue #18), /pieces/ID/NAME the piece as composed."""
    from cantus.storage import LocalPieceStore

    piece_id = "ab" * 16
    store = LocalPieceStore(tmp_path)
    store.write(piece_id, "piece.json", b'{"version": 1}')
    store.write(piece_id, "piece.json", b'{"version": 2}', version=2)

    async def main():
        settings = Settings()
        web = GatewayWeb(
            settings, RecordingProducer(), FinishingRouter(), StationDirectory(settings)
        )
        web.store = store
        async with TestClient(TestServer(web.app())) as client:
            assert await (await client.get(f"/pieces/{piece_id}/versions")).json() == {
                "versions": [1, 2]
            }
            v2 = await client.get(f"/pieces/{piece_id}/v2/piece.json")
            assert await v2.json() == {"version": 2}
            v1 = await client.get(f"/pieces/{piece_id}/piece.json")
            assert await v1.json() == {"version": 1}
            assert (await client.get(f"/pieces/{piece_id}/v3/piece.json")).status == 404
            assert (await client.get(f"/pieces/{'cd' * 16}/versions")).status == 404

    asyncio.run(main())


def test_compose_events_take_lyrics_language_register_and_vocals():
    async def check(client, producer):
        response = await client.get(
            "/compose/events",
            params={"lyrics": "河上的月光", "lang": "zh", "register": "qu", "rhyme": "ABAB"},
        )
        assert response.status == 200
        english = await client.get(
            "/compose/events", params={"lyrics": "the sea at night", "vocals": "off"}
        )
        assert english.status == 200
        specs = [pb.ComposeRequested.FromString(value).spec for _, _, value in producer.sent]
        mandarin, sea = specs
        assert (mandarin.lyrics_theme, mandarin.lyrics_language) == ("河上的月光", "zh")
        assert (mandarin.lyrics_register, mandarin.lyrics_rhyme_scheme) == ("qu", "ABAB")
        assert mandarin.vocals  # on by default with lyrics
        assert (sea.lyrics_theme, sea.lyrics_language) == ("the sea at night", "en")
        assert not sea.vocals

    run(check)


def test_compose_events_refuse_bad_lyrics_fields_by_name():
    async def check(client, producer):
        cases = {
            "register (lyrics_register)": {"lyrics": "the sea", "register": "qu"},  # not English
            "lang (lyrics_language)": {"lyrics": "the sea", "lang": "fr"},
            "lyrics (lyrics_theme)": {"lyrics": "x" * 1_000},
            "vocals": {"lyrics": "the sea", "vocals": "loud"},
        }
        for field, params in cases.items():
            response = await client.get("/compose/events", params=params)
            assert response.status == 400, field
            assert (await response.text()).startswith(f"{field}: "), field
        without_theme = await client.get("/compose/events", params={"vocals": "1"})
        assert (await without_theme.text()).startswith("vocals: ")
        assert producer.sent == []

    run(check)
