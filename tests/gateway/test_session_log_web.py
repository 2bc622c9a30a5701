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

    asyncio.run(main())
