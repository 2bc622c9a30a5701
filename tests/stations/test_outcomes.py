"""A station's outcome logs are kept per session id and bounded (#17): a station name
reused session after session does not grow the gateway's memory without bound."""

from cantus.stations.outcomes import StationOutcomes
from cantus.v1 import station_pb2 as st

HOUR_NS = 3600 * 10**9


def _record(session_id: str, at_ns: int, **what) -> st.OutcomeRecord:
    what = what or {"adjustment": st.Adjustment(tempo_bpm=70)}
    return st.OutcomeRecord(station="walk", session_id=session_id, at_unix_ns=at_ns, **what)


def test_a_reused_station_name_keeps_its_last_sessions_each_bounded():
    outcomes = StationOutcomes(sessions=3, records_per_session=100)
    for day in range(10):
        session = f"s{day}"
        outcomes.add(_record(session, day * 24 * HOUR_NS, started=st.SessionStarted()))
        for i in range(1, 500):
            outcomes.add(_record(session, day * 24 * HOUR_NS + i * 10**9))
    assert list(outcomes.logs) == ["s7", "s8", "s9"]
    assert len(outcomes) == 300
    latest = outcomes.session()
    assert latest is not None and latest.session_id == "s9"
    # the start record (plan and config) is kept; the oldest records after it went
    assert latest.records[0].WhichOneof("what") == "started"
    assert latest.records[1].at_unix_ns == 9 * 24 * HOUR_NS + 401 * 10**9
    assert outcomes.session("s0") is None and outcomes.session("s8") is not None


def test_sessions_older_than_the_retention_are_dropped():
    outcomes = StationOutcomes(sessions=8, retention_s=48 * 3600.0)
    outcomes.add(_record("old", 0))
    outcomes.add(_record("mid", 30 * HOUR_NS))
    outcomes.add(_record("new", 60 * HOUR_NS))
    assert list(outcomes.logs) == ["mid", "new"]
    # a record of a kept session counts as writing to it: it becomes the newest
    outcomes.add(_record("mid", 61 * HOUR_NS))
    assert list(outcomes.logs) == ["new", "mid"]
