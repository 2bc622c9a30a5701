"""A session's outcome log, read by the gateway's directory from the outcome topic's
records, downloaded as JSON and CSV."""

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer

from cantus.settings import Settings
from cantus.stations.outcomes import outcome
from cantus.stations.records import encode_station_record
from cantus.v1 import station_pb2 as st
from services.gateway.stations import StationDirectory
from services.gateway.web import GatewayWeb


def test_session_log_downloads():
    async def main():
        settings = Settings()
        directory = StationDirectory(settings)
        status = st.StationStatus(name="walk-1", running=True)
        for kind, message in [
            ("station_state", status),
            (
                "station_outcome",
                outcome(
                    "walk-1",
                    1.0,
                    signal=st.SignalOutcome(
                        signal=st.ListenerSignal(
                            station="walk-1", measured_unix_ns=10**18, kind=st.HEART_RATE, value=71
                        )
                    ),
                ),
            ),
            ("station_outcome", outcome("walk-1", 2.0, adjustment=st.Adjustment(tempo_bpm=70))),
        ]:
            _, value, headers = encode_station_record(kind, message, "walk-1", source="test")
            directory.on_record(getattr(settings.topics, kind), value, headers, 0)
        web = GatewayWeb(settings, None, None, directory)
        async with TestClient(TestServer(web.app())) as client:
            got = await client.get("/stations/walk-1/session.json")
            log = json.loads(await got.text())
            assert log["signals"][0]["value"] == 71 and log["adjustments"][0]["tempo_bpm"] == 70
            csv_response = await client.get("/stations/walk-1/session.csv")
            assert csv_response.content_type == "text/csv"
            assert "attachment" in csv_response.headers["Content-Disposition"]
            lines = (await csv_response.text()).splitlines()
            assert lines[0].startswith("at_utc,") and len(lines) == 3
            assert (await client.get("/stations/nobody/session.csv")).status == 404
            # a second session on the same name: served by default; the first by its id
            second = outcome("walk-1", 0.0, adjustment=st.Adjustment(tempo_bpm=99))
            second.session_id = "second"
            _, value, headers = encode_station_record("station_outcome", second, "walk-1",
                                                      source="test")  # fmt: skip
            directory.on_record(settings.topics.station_outcome, value, headers, 0)
            log = json.loads(await (await client.get("/stations/walk-1/session.json")).text())
            assert log["session_id"] == "second" and log["adjustments"][0]["tempo_bpm"] == 99
            first = await client.get("/stations/walk-1/session.json", params={"session": ""})
            assert json.loads(await first.text())["session_id"] == "second"
            missing = await client.get("/stations/walk-1/session.csv", params={"session": "x"})
            assert missing.status == 404 and "session:" in await missing.text()

    asyncio.run(main())


def test_plan_session_settings_merge_and_name_their_field():
    import pytest

    from cantus.stations.plans import PlanError
    from services.gateway.stations import StationApi

    api = StationApi(Settings(), None, None)
    for text, field in [("[1, 2]", "session_yaml"), ("a: [", "session_yaml"),
                        ("mode: jog", "session_yaml.mode")]:  # fmt: skip
        with pytest.raises(PlanError) as caught:
            api._session(st.PlanRequest(preset="walk", session_yaml=text, minutes=3), "x")
        assert caught.value.field == field
    command, steps = api._session(st.PlanRequest(preset="sleep", minutes=3, bars=4), "x")
    assert steps[-1].last and not command.plan  # closed loop: steps decided as it goes
    assert "minutes: 3" in command.session.config_yaml
    assert "piece_bars: 4" in command.session.config_yaml
    open_command, open_steps = api._session(
        st.PlanRequest(preset="relax", session_yaml="mode: open"), "y"
    )
    assert list(open_command.plan) == list(open_steps)
