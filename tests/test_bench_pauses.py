"""The benchmark's pause figure of a long drain (bench/run.py), without a broker."""

from bench.run import longest_pause, stood_still


def test_a_pause_counts_only_while_readings_wait():
    points = [(0.0, 0), (0.5, 0), (1.0, 10),  # waiting for the first reading is not a pause
              (1.1, 20), (2.4, 20), (2.5, 30),  # the count stood still from 1.1 to 2.5
              (2.6, 40), (9.0, 40)]  # all 40 counted: nothing waits any more
    assert stood_still(points, 40, longer_than=0.5) == [(1.1, 2.5)]
    assert round(longest_pause(points, 40), 2) == 1.4


def test_no_movement_no_pause():
    assert longest_pause([(0.0, 0), (1.0, 0)], 10) == 0.0
