"""Format versions (humidity.core.formats): every stored value and internal
message carries one; a value of a newer release stops the worker with one
line; the older shapes are read only from values written before versions."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from humidity.core import aggregate, formats
from humidity.core.alarm_partition import AlarmPartition
from humidity.core.ownership import epoch_of
from humidity.core.partials import PartialsBook
from humidity.core.sensor_counts import SensorTotals, _entry

json_keys = st.text(min_size=1, max_size=8).filter(lambda k: k not in ("v", "epoch"))
json_values = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), st.text(max_size=12))


@given(doc=st.dictionaries(json_keys, json_values, max_size=6), epoch=st.integers(0, 10**6))
def test_the_version_comes_first_and_the_epoch_stays_last(doc, epoch):
    raw = formats.dumps({**doc, "epoch": epoch})
    assert raw.startswith(b'{"v":1')
    assert epoch_of(raw) == epoch
    decoded = formats.loads(raw, "a table")
    assert formats.version_of(decoded) == 1 and formats.body(decoded) == {**doc, "epoch": epoch}
    # read, changed and written again: still one version member, first
    again = formats.dumps({**decoded, "epoch": epoch + 1})
    assert again.count(b'"v":') == raw.count(b'"v":') and epoch_of(again) == epoch + 1


def test_a_value_of_a_newer_release_is_refused_with_where_it_was():
    with pytest.raises(formats.NewerFormat, match=r"the partials topic holds a value of format version 2"):
        formats.loads(b'{"v":2,"round":1}', "the partials topic")
    with pytest.raises(formats.NewerFormat):
        formats.check_raw(b'{"v":3,"offset":1,"epoch":2}', "x-changelog[0]")
    for fine in (None, b'{"v":1,"offset":1}', b'{"offset":1}', b"17", b"not json"):
        formats.check_raw(fine, "x-changelog[0]")
    assert formats.loads(b'{"offset":1}', "a table") == {"offset": 1}  # before versions: version 0


def test_a_sensor_entry_before_rounds_is_read_so_only_without_a_version():
    old = {"first": 3, "devices": {"MRI 1": 3}}
    assert _entry(dict(old), 10) == {"round": -1, "first": 3, "devices": {"MRI 1": [-1, 3]}}
    with pytest.raises((KeyError, TypeError)):
        _entry({"v": 1, **old}, 10)


def test_totals_headers_holding_devices_are_read_so_only_without_a_version():
    old_sensors = {"offset": 7, "sensors": 2, "devices": {"MRI 1": 2}, "closed": 3, "ends": {"0": 3}, "epoch": 2}
    assert SensorTotals.from_stored(old_sensors, [], 1).unsaved == {"MRI 1": 2}
    with pytest.raises(ValueError, match="holds no devices"):
        SensorTotals.from_stored({"v": 1, **old_sensors}, [], 1)
    old_ingest = {"offset": 5, "valid": 4, "invalid": 1, "devices": {"CT 1": [[200.0], 4]}}
    assert aggregate.IngestTotals.from_stored(old_ingest, []).unsaved == {"CT 1"}
    with pytest.raises(ValueError, match="holds no devices"):
        aggregate.IngestTotals.from_stored({"v": 1, **old_ingest}, [])


def test_a_header_without_round_ends_is_read_so_only_without_a_version():
    old = {"offset": 4, "recent": [], "epoch": 1}
    assert AlarmPartition.from_json(old, 2).offset == 4
    with pytest.raises(KeyError):
        AlarmPartition.from_json({"v": 1, **old}, 2)


def test_partials_before_rounds_and_counts_are_read_so_only_without_a_version():
    book = PartialsBook(2)
    assert book.update("ingest/0", {"offset": 3, "valid": 3, "invalid": 0}) is False  # before rounds: ignored
    with pytest.raises(KeyError):
        book.update("ingest/0", {"v": 1, "offset": 3, "valid": 3, "invalid": 0})
    assert book.update("alarms/1", {"round": 2, "offset": 9, "active": []}) is True  # before counts
    with pytest.raises(KeyError):
        book.update("alarms/0", {"v": 1, "round": 2, "offset": 9, "active": []})


def test_a_sighting_before_versions_holds_its_offset_bare():
    assert aggregate.sighting_offset(b"41") == 41
    assert aggregate.sighting_offset(aggregate.sighting_value(41)) == 41
    assert orjson.loads(aggregate.sighting_value(41)) == {"v": 1, "o": 41}
