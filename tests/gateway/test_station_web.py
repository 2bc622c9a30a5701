"""The gateway's HTTP side for stations, over an in-process station directory."""

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer

from cantus.settings import Settings
from cantus.v1 import station_pb2 as st
from services.gateway.stations import StationDirectory
from services.gateway.web import GatewayWeb


class RecordingProducer:
    def __init__(self):
        self.sent = []

    async def send_and_wait(self, topic, value, key=None, headers=None):
        self.sent.append((topic, key, value))


def directory_with_station(settings):
    directory = StationDirectory(settings)
    stream = directory.stream("radio")
    stream.status = st.StationStatus(
        name="radio",
        running=True,
        program=[st.ProgramEntry(piece_id="a" * 32, title="One", status="streamed")],
    )
    for sequence in range(3):
        stream.segments[sequence] = st.StationSegment(
            station="radio", sequence=sequence, duration_seconds=4.0, data=b"ts%d" % sequence,
            media_type="video/mp2t", discontinuity=sequence == 0,
        )  # fmt: skip
    return directory


def run(check):
    async def main():
        settings = Settings()
        producer = RecordingProducer()
        web = GatewayWeb(settings, producer, None, directory_with_station(settings))
        async with TestClient(TestServer(web.app())) as client:
            await check(client, producer)

    asyncio.run(main())


def test_playlist_segments_and_feeds():
    async def check(client, producer):
        playlist = await client.get("/stations/radio/live.m3u8")
        assert playlist.status == 200
        assert playlist.content_type == "application/vnd.apple.mpegurl"
        text = await playlist.text()
        assert text.count("#EXTINF:4.000,") == 3 and "#EXT-X-ENDLIST" not in text
        segment = await client.get("/stations/radio/seg1.ts")
        assert await segment.read() == b"ts1" and segment.content_type == "video/mp2t"
        assert (await client.get("/stations/radio/seg9.ts")).status == 404
        assert (await client.get("/stations/nobody/live.m3u8")).status == 404
        feed = json.loads(await (await client.get("/stations/radio/playlist.json")).text())
        assert feed["pieces"][0]["title"] == "One"
        page = await client.get("/")
        assert "MediaSource" in await page.text()

    run(check)


def test_feedback_is_checked_then_published():
    async def check(client, producer):
        bad = await client.post(
            "/stations/radio/feedback", json={"piece_id": "a" * 32, "kind": "x"}
        )
        assert bad.status == 400 and "kind" in await bad.text()
        unknown = await client.post(
            "/stations/radio/feedback", json={"piece_id": "b", "kind": "like"}
        )
        assert unknown.status == 400 and "piece_id" in await unknown.text()
        assert (await client.post("/stations/radio/feedback", data="nope")).status == 400
        ok = await client.post(
            "/stations/radio/feedback", json={"piece_id": "a" * 32, "kind": "like"}
        )
        assert ok.status == 200
        ((topic, key, value),) = producer.sent
        assert topic == Settings().topics.station_feedback and key == b"radio"
        assert st.StationFeedback.FromString(value).kind == "like"

    run(check)


def test_bad_piece_file_names_are_refused():
    async def check(client, producer):
        assert (await client.get("/pieces/" + "a" * 32 + "/..%2fsecret")).status in (400, 404)
        # a malformed id is the client's mistake (400), a well-formed unknown one is missing
        response = await client.get("/pieces/not-an-id/piece.mp3")
        assert response.status == 400 and "32-character" in await response.text()
        assert (await client.get("/pieces/" + "b" * 32 + "/piece.mp3")).status == 404

    run(check)


def test_a_player_given_the_playlist_with_a_token_fetches_its_segments_with_it(tmp_path):
    """A native HLS player cannot send a header: given ``live.m3u8?token=…`` it resolves the
    playlist's relative segment URIs against it, which must carry the token too (#22)."""
    import aiohttp
    from yarl import URL

    from cantus.stack import free_ports

    token = "s3cret-token-0123456789abcdef"
    port = free_ports(1)[0]
    settings = Settings(
        data_dir=tmp_path, gateway_http_port=port, host="127.0.0.1", gateway_auth_token=token
    )

    async def main():
        web = GatewayWeb(settings, RecordingProducer(), None, directory_with_station(settings))
        await web.start()
        try:
            async with aiohttp.ClientSession() as session:
                url = URL(f"http://127.0.0.1:{port}/stations/radio/live.m3u8").with_query(
                    token=token
                )
                async with session.get(url) as playlist:
                    assert playlist.status == 200
                    uris = [u for u in (await playlist.text()).splitlines() if u.startswith("seg")]
                assert len(uris) == 3
                bodies = []
                for uri in uris:
                    async with session.get(url.join(URL(uri, encoded=True))) as segment:
                        assert segment.status == 200, uri
                        bodies.append(await segment.read())
                assert bodies == [b"ts0", b"ts1", b"ts2"]
                header = {"Authorization": f"Bearer {token}"}
                async with session.get(url.with_query(None), headers=header) as playlist:
                    assert "token" not in await playlist.text()  # nothing to pass on
        finally:
            await web.stop()

    asyncio.run(main())


def test_a_segment_is_served_from_the_segment_store(tmp_path):
    """Records name where the station stored a segment; the gateway reads it from there
    and never follows a record's URI as a path."""
    from cantus.segment_store import station_segment_store

    async def main():
        settings = Settings(data_dir=tmp_path / "pieces")
        directory = directory_with_station(settings)
        stream = directory.stream("radio")
        uri = station_segment_store(settings).write("radio", 3, b"stored ts")
        stream.segments[3] = st.StationSegment(
            station="radio", sequence=3, duration_seconds=4.0, uri=uri, media_type="video/mp2t"
        )
        stream.segments[4] = st.StationSegment(  # a poisoned record
            station="radio", sequence=4, duration_seconds=4.0, uri="file:///etc/passwd",
            media_type="video/mp2t",
        )  # fmt: skip
        stream.segments[5] = st.StationSegment(  # pruned since: the record outlived it
            station="radio", sequence=5, duration_seconds=4.0,
            uri=uri.replace("seg3-", "seg5-"), media_type="video/mp2t",
        )  # fmt: skip
        web = GatewayWeb(settings, RecordingProducer(), None, directory)
        async with TestClient(TestServer(web.app())) as client:
            stored = await client.get("/stations/radio/seg3.ts")
            assert stored.status == 200 and await stored.read() == b"stored ts"
            assert stored.content_type == "video/mp2t"
            assert (await client.get("/stations/radio/seg4.ts")).status == 404
            assert (await client.get("/stations/radio/seg5.ts")).status == 404
            inline = await client.get("/stations/radio/seg1.ts")  # a record from before
            assert await inline.read() == b"ts1"

    asyncio.run(main())
