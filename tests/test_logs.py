"""The log stays readable while Kafka is away (no broker)."""

import logging

from humidity.core.logs import RepeatFilter


def record(name, msg, *args, level=logging.ERROR):
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_line_per_period_per_message_with_a_count_of_the_rest():
    now = [0.0]
    f = RepeatFilter(period=10.0, clock=lambda: now[0])
    passed = []
    for i in range(500):
        now[0] = i * 0.05  # 25 s of a flood: 20 per second
        r = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
        if f.filter(r):
            passed.append((now[0], r.getMessage()))
    assert [t for t, _ in passed] == [0.0, 10.0, 20.0]
    assert passed[1][1].endswith("[199 similar held back in the last 10 s]")


def test_numbers_do_not_make_messages_different_and_others_pass():
    f = RepeatFilter(period=10.0, clock=lambda: 0.0)
    assert f.filter(record("faust.transport.producer", "producer buffer full size 533", level=logging.WARNING))
    assert not f.filter(record("faust.transport.producer", "producer buffer full size 432", level=logging.WARNING))
    assert all(f.filter(record("humidity.flow.publisher", "Summary published")) for _ in range(3))
    assert all(f.filter(record("aiokafka.conn", "connected", level=logging.INFO)) for _ in range(3))
