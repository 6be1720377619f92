"""The summaries' publisher meets a broker that went away while it takes the
lead (no broker): it must try again later, not crash the worker."""

from aiokafka.errors import KafkaConnectionError

from humidity.core.alarm_limits import load_config
from humidity.core.settings import DEFAULT_ALARMS_FILE, Settings
from humidity.flow import publisher as publisher_flow
from humidity.service import compose


async def test_a_broker_gone_while_the_newest_summary_is_read_leaves_the_lead_for_a_later_try(tmp_path, monkeypatch):
    service = compose(Settings(app_id="publisher-test", data_dir=tmp_path / "data"), load_config(DEFAULT_ALARMS_FILE))
    publisher, released = service.publisher, []

    async def taken(term):
        return True

    async def release():
        released.append(True)

    async def unreachable(*args):
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")

    monkeypatch.setattr(publisher.writer, "take", taken)
    monkeypatch.setattr(publisher.writer, "release", release)
    monkeypatch.setattr(publisher_flow, "read_newest", unreachable)
    assert await publisher._lead() is False
    assert released == [True], "the role is given back, so the next interval takes it and reads again"
