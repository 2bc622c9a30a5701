"""A station command no one can act on (unknown action, hostile name or config) is refused
with InvalidEvent naming its field, so the station service dead-letters it (#22: hostile
input through raw Kafka records) instead of logging it and dropping it."""

from __future__ import annotations

import asyncio

import pytest

from cantus.events.codec import InvalidEvent
from cantus.settings import Settings
from cantus.v1 import station_pb2 as st
from services.station.app import StationService


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (st.StationCommand(name="radio", action="explode"), "action: "),
        (st.StationCommand(name="../etc", action="start", config_yaml="bars: 4"), "name: "),
        (st.StationCommand(name="radio", action="start", config_yaml="{{{"), "config_yaml"),
        (
            st.StationCommand(name="radio", action="start", config_yaml="bars: -3"),
            "config_yaml.bars: ",
        ),
    ],
)
def test_a_command_no_one_can_act_on_raises_naming_its_field(tmp_path, command, field) -> None:
    service = StationService(Settings(data_dir=tmp_path))
    with pytest.raises(InvalidEvent) as refused:
        asyncio.run(service.on_command(command))
    assert str(refused.value).startswith(field)
    assert service.workers == {}
