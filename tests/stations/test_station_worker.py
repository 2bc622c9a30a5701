"""A station worker's per-piece state is bounded by its program window, like its snapshot."""

import random
import types

from cantus.settings import Settings
from cantus.v1 import station_pb2 as st
from services.station.app import StationWorker

from .test_snapshot import CONFIG, play


def test_pieces_that_left_the_window_leave_the_workers_maps():
    settings = Settings(station_history_pieces=10)
    service = types.SimpleNamespace(settings=settings, owners={"other-piece": "other-station"})
    worker = StationWorker(service, st.StationStatus(name="radio", config_yaml=CONFIG))
    rng = random.Random(0)
    for _ in range(60):  # what _request_piece and on_event leave behind for each piece
        play(worker.program, 1, rng)  # requests (which trims the window) and plays a piece
        worker.forget_pieces_out_of_window()
        piece_id = worker.program.status.program[-1].piece_id
        worker.requested_bars[piece_id] = 16
        worker.fed[piece_id] = 3
        service.owners[piece_id] = "radio"
    in_window = {entry.piece_id for entry in worker.program.status.program}
    assert len(in_window) < 20
    assert set(worker.requested_bars) <= in_window and set(worker.fed) <= in_window
    assert {p for p, name in service.owners.items() if name == "radio"} <= in_window
    assert service.owners["other-piece"] == "other-station"  # other stations' pieces stay
