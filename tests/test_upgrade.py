"""A deployment made by an older version (fewer topics and tables) starts the
new version: the new topics are created and assigned, and summaries flow."""

import pytest

from tests import helpers
from tests.reference import dataset, expected_summary, matches

pytestmark = pytest.mark.kafka

OLD_TABLES = ("ingest-totals", "sightings", "sensor-totals", "sensors")


def test_new_topics_of_an_upgrade_are_assigned(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    app_id, p = env["HUMIDITY_APP_ID"], int(env["HUMIDITY_PARTITIONS"])
    old = [env["HUMIDITY_INPUT_TOPIC"], env["HUMIDITY_INVALID_TOPIC"], env["HUMIDITY_RESULTS_TOPIC"],
           f"{app_id}-sensor-sightings", f"{app_id}-partials"]
    for name in old:
        helpers.run(helpers.create_topic(name, p))
    for table in OLD_TABLES:
        helpers.run(helpers.create_topic(f"{app_id}-{table}-changelog", p, {"cleanup.policy": "compact"}))
    records = dataset(2_000, seed=81)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))
    worker = workers(env, "upgraded")
    worker.wait_for_log(r"\[\^Worker\]: Ready", timeout=120)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)),
                                       timeout=60)
    assert summary["active_alarms"] == []
    assert "Ignoring missing topic" not in worker.log()


def test_a_value_of_a_newer_release_stops_the_worker_with_one_line(kafka, tmp_path, workers):
    """A rolled-back worker meets what a newer release wrote: it must not
    count on with rules that are not its own."""
    env = helpers.service_env(tmp_path)
    worker = workers(env, "older")
    worker.wait_for_log(r"\[\^Worker\]: Ready", timeout=120)
    newer = b'{"v":2,"round":1,"offset":0,"valid":0,"invalid":0,"epoch":9}'
    helpers.run(helpers.produce(f"{env['HUMIDITY_APP_ID']}-partials", [newer], key=b"ingest/0"))
    assert worker.wait(timeout=60) != 0
    log = worker.log()
    assert "the partials topic holds a value of format version 2" in log
    assert "Traceback" not in log
