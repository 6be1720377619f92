"""Configuration: defaults, parsing, and the one-line error for bad values."""

import subprocess
from pathlib import Path

import pytest

from humidity.core.settings import SETTINGS, ConfigError, Settings, from_environ, markdown_table
from tests import helpers


def test_defaults_match_the_documented_table():
    s = from_environ({})
    assert s == Settings()
    assert (s.broker, s.app_id, s.input_topic, s.results_topic, s.invalid_topic) == (
        "kafka://127.0.0.1:9092", "humidity", "humidityanalytics", "humidity-summaries", "humidityanalytics-invalid")
    assert (s.partitions, s.interval, s.data_dir, s.web_port, s.web_bind) == (4, 3.0, Path("./data"), 6066, "127.0.0.1")


def test_the_readme_configuration_table_is_the_settings_rows():
    readme = (helpers.ROOT / "README.md").read_text()
    assert markdown_table() in readme, "README's configuration table differs from humidity/core/settings.py:\n" + \
        markdown_table()
    defaults = Settings()
    for field in SETTINGS:  # every default the table shows is the default in force
        value, shown = getattr(defaults, field.name), field.metadata["shown"]
        if shown in ("(none)", "system CAs"):
            assert value in ("", (), None), field.name
        elif isinstance(value, Path):
            assert (helpers.ROOT / shown).resolve() == (helpers.ROOT / value).resolve(), field.name
        else:
            assert field.metadata["parse"](shown) == value, field.name


def test_values_are_parsed():
    s = from_environ({"HUMIDITY_BROKER": "10.0.0.1:9093,kafka://b:9094", "HUMIDITY_PARTITIONS": "8",
                      "HUMIDITY_INTERVAL": "0.5", "HUMIDITY_WEB_PORT": "7000"})
    assert s.bootstrap_servers == ["10.0.0.1:9093", "b:9094"]
    assert (s.partitions, s.interval, s.web_port) == (8, 0.5, 7000)


@pytest.mark.parametrize("variable,value", [
    ("HUMIDITY_PARTITIONS", "abc"), ("HUMIDITY_PARTITIONS", "0"), ("HUMIDITY_INTERVAL", "nan"),
    ("HUMIDITY_INTERVAL", "-3"), ("HUMIDITY_WEB_PORT", "70000"), ("HUMIDITY_BROKER", "http://x:1"),
    ("HUMIDITY_INPUT_TOPIC", "bad topic!"), ("HUMIDITY_WEB_BIND", "a b"),
    ("HUMIDITY_NOTIFY_WEBHOOKS", "ftp://x/y"), ("HUMIDITY_NOTIFY_EMAILS", "ops@x.org, not an address"),
    ("HUMIDITY_SMTP_FROM", "a@b, c@d"), ("HUMIDITY_ESCALATE_AFTER", "0"), ("HUMIDITY_PUBLIC_URL", "example.org"),
])
def test_bad_values_name_the_variable(variable, value):
    with pytest.raises(ConfigError) as info:
        from_environ({variable: value})
    assert variable in str(info.value)


def test_notification_settings_that_cannot_work_together_are_refused():
    with pytest.raises(ConfigError, match="HUMIDITY_SMTP_HOST"):
        from_environ({"HUMIDITY_NOTIFY_EMAILS": "ops@example.org"})
    with pytest.raises(ConfigError, match="STARTTLS") as info:
        from_environ({"HUMIDITY_SMTP_HOST": "mail.example.org", "HUMIDITY_SMTP_USER": "svc",
                      "HUMIDITY_SMTP_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in str(info.value)
    s = from_environ({"HUMIDITY_NOTIFY_WEBHOOKS": "https://a.example/hook, http://127.0.0.1:9/x",
                      "HUMIDITY_SMTP_HOST": "localhost", "HUMIDITY_SMTP_USER": "svc",
                      "HUMIDITY_SMTP_PASSWORD": "hunter2-secret", "HUMIDITY_NOTIFY_EMAILS": "a@x.org,b@y.org"})
    assert s.notify_webhooks == ("https://a.example/hook", "http://127.0.0.1:9/x")
    assert s.notify_emails == ("a@x.org", "b@y.org")
    assert "hunter2-secret" not in repr(s)


def test_worker_stops_at_start_with_one_line_for_a_bad_setting(tmp_path):
    env = helpers.service_env(tmp_path, HUMIDITY_PARTITIONS="abc") if helpers.kafka_port() else {
        "PATH": "/usr/bin:/bin", "HUMIDITY_PARTITIONS": "abc"}
    proc = subprocess.run([helpers.FAUST, "-A", "app", "worker", "-l", "info"], cwd=helpers.ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "HUMIDITY_PARTITIONS" in lines[0] and "Traceback" not in lines[0]


def test_sasl_needs_user_and_password_and_never_echoes_the_password(tmp_path):
    with pytest.raises(ConfigError, match="HUMIDITY_KAFKA_SASL_USERNAME is required"):
        from_environ({"HUMIDITY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    with pytest.raises(ConfigError) as info:
        from_environ({"HUMIDITY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "HUMIDITY_KAFKA_SASL_USERNAME": "u"})
    assert "HUMIDITY_KAFKA_SASL_PASSWORD" in str(info.value)
    with pytest.raises(ConfigError) as info:
        from_environ({"HUMIDITY_KAFKA_SASL_PASSWORD": "hunter2"})
    assert "hunter2" not in str(info.value)
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    s = from_environ({"HUMIDITY_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "HUMIDITY_KAFKA_SASL_USERNAME": "u",
                      "HUMIDITY_KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert s.security_protocol == "SASL_PLAINTEXT" and s.sasl_password == "from-a-file"
    assert "from-a-file" not in repr(s)


@pytest.mark.parametrize("variable,value", [("HUMIDITY_KAFKA_SECURITY_PROTOCOL", "TLS"),
                                            ("HUMIDITY_KAFKA_SASL_MECHANISM", "GSSAPI"),
                                            ("HUMIDITY_KAFKA_CA_FILE", "/no/such/ca.pem")])
def test_bad_security_settings_name_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        from_environ({variable: value})


def test_worker_stops_at_start_with_one_line_naming_a_bad_device_section(tmp_path):
    alarms = tmp_path / "alarms.toml"
    alarms.write_text('[devices."MRI 12"]\nhihg = 55\n')
    env = {"PATH": "/usr/bin:/bin", "HUMIDITY_ALARMS_FILE": str(alarms)}
    proc = subprocess.run([helpers.FAUST, "-A", "app", "worker", "-l", "info"], cwd=helpers.ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and '[devices."MRI 12"] hihg: unknown key' in lines[0], lines
