"""A minimal Faust app with a RocksDB store starts on the broker and consumes."""

import textwrap

import pytest

from tests import helpers

pytestmark = pytest.mark.kafka


def test_minimal_faust_app_with_rocksdb_receives_a_message(kafka, tmp_path, workers):
    topic, app_id = helpers.unique("minimal"), helpers.unique("minimal")
    helpers.run(helpers.create_topic(topic, 1))
    # Faust would create the table's changelog itself and may check it before
    # the metadata shows its partition (PartitionsMismatch); the service
    # creates its topics first for the same reason (HumidityApp.topic_specs)
    helpers.run(helpers.create_topic(f"{app_id}-seen-changelog", 1, {"cleanup.policy": "compact"}))
    (tmp_path / "minimal_app.py").write_text(textwrap.dedent(f"""
        import faust
        app = faust.App({app_id!r}, broker="kafka://{kafka}", store="rocksdb://",
                        datadir={str(tmp_path / "rocks")!r}, web_port={helpers.free_port()},
                        web_bind="127.0.0.1", web_host="127.0.0.1", topic_partitions=1)
        seen = app.Table("seen", partitions=1, default=int)

        @app.agent(app.topic({topic!r}, value_serializer="raw"))
        async def receive(stream):
            async for value in stream:
                seen["count"] += 1
                print(f"received {{value.decode()}} {{seen['count']}}", flush=True)
    """))
    env = dict(helpers.service_env(tmp_path), PYTHONPATH=str(tmp_path))
    worker = workers(env, "minimal", app="minimal_app", cwd=tmp_path)
    worker.wait_for_log(r"Ready", timeout=90)
    helpers.run(helpers.produce(topic, [b"hello-faust"]))
    worker.wait_for_log(r"received hello-faust 1", timeout=60)
    assert list((tmp_path / "rocks").rglob("*.sst")) or list((tmp_path / "rocks").rglob("CURRENT")), \
        "the table should live in a RocksDB directory"
