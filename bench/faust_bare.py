"""(b) Faust's ceiling: a bare agent that only iterates the topic.

Started by bench/run.py as ``faust -A bench.faust_bare worker`` with BENCH_*
variables; writes the time of its first and N-th event to BENCH_RESULT.
"""

import json
import os
import time

import faust

N = int(os.environ["BENCH_N"])
RESULT = os.environ["BENCH_RESULT"]

app = faust.App(
    os.environ["BENCH_APP_ID"], broker=os.environ["BENCH_BROKER"], store="memory://",
    datadir=os.environ["BENCH_DATA_DIR"], topic_partitions=int(os.environ["BENCH_PARTITIONS"]),
    web_port=int(os.environ["BENCH_WEB_PORT"]), web_bind="127.0.0.1", web_host="127.0.0.1",
    consumer_auto_offset_reset="earliest",
)
topic = app.topic(os.environ["BENCH_TOPIC"], value_serializer="raw")
state = {"count": 0, "first": None}


@app.agent(topic)
async def iterate(stream):
    async for _value in stream:
        if state["first"] is None:
            state["first"] = time.time()
        state["count"] += 1
        if state["count"] == N:
            with open(RESULT, "w") as out:
                json.dump({"first": state["first"], "last": time.time(), "count": N}, out)
