"""(e) Quix Streams computing the same aggregates with its own RocksDB state.

Run by bench/run.py in bench/.venv-quix:
    python bench/quix_app.py BROKER TOPIC N RESULT_FILE STATE_DIR
Readings are re-keyed by device (Quix state is per message key); per device
the state keeps the exact-enough float sum, the count and the distinct guids
(one state key per guid, so the per-reading cost does not grow with sensors).
In the benchmark data every guid stays on one device, so the sum of distinct
guids per device is the total. Writes first/last processing times.
"""

import json
import sys
import time
import uuid

import orjson
from quixstreams import Application
from quixstreams.models.serializers import BytesDeserializer

broker, topic_name, n, result_file, state_dir = sys.argv[1:6]
N = int(n)
seen = {"count": 0, "first": None, "valid": 0}


def parse(value: bytes):
    if seen["first"] is None:
        seen["first"] = time.time()
    try:
        doc = orjson.loads(value)
        device = doc.get("medicalImagingdevice") or doc.get("medicalimagingdevice")
        humidity = doc["payload"]["data"]["humidity"]
        if not isinstance(device, str) or not isinstance(humidity, (int, float)) or isinstance(humidity, bool):
            return None
        return {"device": device, "guid": doc["guid"], "humidity": float(humidity)}
    except Exception:  # noqa: BLE001
        return None


def aggregate(row: dict, state):
    totals = state.get("totals", [0.0, 0, 0])
    totals[0] += row["humidity"]
    totals[1] += 1
    guid_key = "g:" + row["guid"]
    if not state.exists(guid_key):
        state.set(guid_key, 1)
        totals[2] += 1
    state.set("totals", totals)
    return row


def count(row):
    seen["count"] += 1
    if seen["count"] == N:
        with open(result_file, "w") as out:
            json.dump({"first": seen["first"], "last": time.time(), "count": N}, out)
        app.stop()
    return row


app = Application(broker_address=broker, consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
                  auto_offset_reset="earliest", state_dir=state_dir, use_changelog_topics=True)
topic = app.topic(topic_name, value_deserializer=BytesDeserializer())
sdf = app.dataframe(topic)
sdf = sdf.apply(parse).filter(lambda row: row is not None)
sdf = sdf.group_by("device")
sdf = sdf.update(aggregate, stateful=True)
sdf = sdf.update(count)
app.run()
