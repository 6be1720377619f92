"""The internal messages: what the sender writes is what the receiver reads,
and the bytes on the wire are the formats the topics have always carried,
stamped with their format version."""

import orjson
import pytest

from humidity.core import formats, messages
from humidity.core.sensor_counts import SensorTotals, count_sensors


def test_the_wire_formats_carry_their_version_first_and_are_otherwise_as_they_were():
    source = {"p": 1, "round": 7, "o": 41}
    assert messages.sightings_bundle(source, [["g1", "MRI 1"]]) == \
        b'{"v":1,"p":1,"round":7,"o":41,"s":[["g1","MRI 1"]]}'
    assert messages.readings_bundle(source, [["g1", "MRI 1", 1.5, 50.0]]) == \
        b'{"v":1,"p":1,"round":7,"o":41,"r":[["g1","MRI 1",1.5,50.0]]}'
    assert messages.end_mark(1, 7, 41) == b'{"v":1,"p":1,"end":7,"o":41}'
    assert messages.tick(12.5) == b'{"v":1,"tick":12.5}'
    assert messages.history_bundle(1, 41, [["g1", "MRI 1", 1.5, 50.0, 40]]) == \
        b'{"v":1,"p":1,"o":41,"r":[["g1","MRI 1",1.5,50.0,40]]}'


def test_a_message_of_a_newer_format_is_refused_and_one_before_versions_is_read():
    with pytest.raises(formats.NewerFormat, match="format version 2"):
        messages.decode(b'{"v":2,"p":1,"end":7,"o":41}')
    assert messages.is_end(messages.decode(b'{"p":1,"end":7,"o":41}'))


def test_each_receiver_reads_what_the_sender_wrote():
    end = messages.sightings_message(messages.END, messages.end_mark(0, 3, 9))
    assert messages.is_end(end) and not messages.is_tick(end)
    assert messages.is_tick(messages.decode(messages.tick(1.0)))
    assert messages.history_rows(messages.history_bundle(2, 5, [["g", "d", 1.0, 2.0, 4]])) == (2, [["g", "d", 1.0,
                                                                                                     2.0, 4]])
    assert messages.sightings_message(b"g1", b"MRI 1") == {"s": [["g1", "MRI 1"]]}, "the earliest format, by key"
    assert messages.decode(b"not json") is None and messages.history_rows(b"[1]") is None
    totals = SensorTotals.from_stored(None, [], 1)
    bundle = messages.sightings_message(messages.SIGHTINGS,
                                        messages.sightings_bundle({"p": 0, "round": 3, "o": 9}, [["g1", "MRI 1"]]))
    outcome = count_sensors(totals, [(0, bundle), (1, orjson.loads(messages.end_mark(0, 3, 9)))], lambda guid: None)
    assert [(round_number, counts.sensors) for round_number, counts in outcome.closed] == [(3, 1)]
