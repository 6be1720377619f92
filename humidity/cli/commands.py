"""Commands (the edge): feeding the service (``faust -A app replay|simulate``),
its users (``add-user``) and its audit trail (``audit verify|export``)."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
import orjson
from faust.cli import option

from humidity.application import HumidityApp
from humidity.core import audit as audit_chain
from humidity.core import users
from humidity.core.readings import utc_iso
from humidity.core.simulation import MOVE_RATE, Simulator
from humidity.declare.topics import Topics
from humidity.plumbing.exit import end_process
from humidity.plumbing.follow import read_range


def _lines(path: Path):
    with path.open("rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                line = line[:-1]
                if line.endswith(b"\r"):
                    line = line[:-1]
            yield line


def _fail(message: str) -> NoReturn:
    """One line on standard error, exit status 1, no traceback."""
    click.echo(message, err=True)
    end_process(1)  # the command runs inside Faust's worker, which would print a traceback for an exception


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            _fail("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` at once (never half written), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _iso_bound(text: str | None) -> str | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{text!r} is not an ISO 8601 date or time")
    return utc_iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def register(app: HumidityApp, topics: Topics) -> None:
    """The service's commands (``faust -A app <command>``)."""
    add_user_command(app)
    audit_command(app)
    replay_command(app, topics)
    simulate_command(app, topics)


def add_user_command(app: HumidityApp) -> None:
    """``add-user``: write a user to the users file."""
    settings = app.settings

    @app.command(
        click.argument("name"),
        option("--role", type=click.Choice(users.ROLES), required=True,
               help="viewer: looks; operator: also acknowledges."),
        option("--file", "users_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
               help="The users file (default: HUMIDITY_USERS_FILE)."),
    )
    async def add_user(self, name: str, role: str, users_file: Path | None) -> None:
        """Add or replace user NAME; the password is read from standard input."""
        path = users_file or settings.users_file
        if path is None:
            _fail("set HUMIDITY_USERS_FILE or pass --file")
        try:
            known = users.load_users(path) if path.exists() else {}
            known = users.with_user(known, name, role, _read_password())
        except users.UsersError as exc:
            _fail(str(exc))
        _write_private(path, users.dump_users(known))
        click.echo(f"add-user: {name} ({role}) written to {path}")


def audit_command(app: HumidityApp) -> None:
    """``audit verify`` and ``audit export``."""
    settings = app.settings

    @app.command(
        click.argument("action", type=click.Choice(["verify", "export"])),
        option("--from", "start", default=None, help="export: records from this time (ISO 8601, UTC if no zone)."),
        option("--to", "end", default=None, help="export: records before this time."),
        option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
               help="export: write the CSV here (default: standard output)."),
    )
    async def audit(self, action: str, start: str | None, end: str | None, output: Path | None) -> None:
        """verify: check the audit topic's hash chain from its start; export: CSV of its records."""
        rows = [row async for row in read_range(settings, settings.audit_topic)]
        if action == "verify":
            verdict = audit_chain.verify(rows)
            if not verdict.ok:
                _fail(f"audit: chain broken after {verdict.records} good record(s): {verdict.problem}")
            click.echo(f"audit: {verdict.records} record(s), the chain holds; last hash {verdict.last_hash}")
            return
        text = audit_chain.export_csv([orjson.loads(value) for _offset, value in rows if value],
                                _iso_bound(start), _iso_bound(end))
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            click.echo(f"audit: {text.count(chr(10)) - 1} record(s) written to {output}", err=True)


def replay_command(app: HumidityApp, topics: Topics) -> None:
    """``replay``: a JSON-lines file to the input topic."""

    @app.command(
        click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    )
    async def replay(self, file: Path) -> None:
        """Send a JSON-lines FILE to the input topic, one message per line, as-is."""
        await app.ensure_topics()
        await app.maybe_start_producer()
        size = file.stat().st_size
        sent = 0
        started = time.monotonic()
        stderr = click.get_text_stream("stderr")
        with click.progressbar(length=size, label=f"replaying {file.name}", file=stderr) as bar:
            for line in _lines(file):
                topics.input.send_soon(value=line)
                sent += 1
                bar.update(len(line) + 1)
                if sent % 1000 == 0:
                    await asyncio.sleep(0)  # let the producer drain its buffer
        await app.producer.flush()
        elapsed = max(time.monotonic() - started, 1e-9)
        click.echo(f"sent {sent} messages from {file} in {elapsed:.2f} s ({sent / elapsed:,.0f} msg/s)")


def simulate_command(app: HumidityApp, topics: Topics) -> None:
    """``simulate``: live datalogger traffic to the input topic."""

    @app.command(
        option("--loggers", type=int, default=2000, show_default=True, help="Number of dataloggers (sensors)."),
        option("--devices", type=int, default=50, show_default=True, help="Number of imaging devices."),
        option("--rate", type=float, default=3334.0, show_default=True, help="Messages per second."),
        option("--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C)."),
        option("--invalid-ratio", type=float, default=0.0, show_default=True,
               help="Share of deliberately malformed messages (0 to 1)."),
        option("--move-rate", type=float, default=MOVE_RATE, show_default=True,
               help="Share of readings from a logger just moved to another device, where it stays (0 to 1)."),
        option("--seed", type=int, default=None, help="Random seed, for repeatable traffic."),
        option("--backfill", type=float, default=0.0, show_default=True,
               help="First send this many HOURS of history (a reading per logger per --backfill-every)."),
        option("--backfill-every", type=float, default=120.0, show_default=True,
               help="Seconds between a logger's backfilled readings."),
    )
    async def simulate(self, loggers: int, devices: int, rate: float, duration, invalid_ratio: float,
                       move_rate: float, seed, backfill: float, backfill_every: float) -> None:
        """Send live, realistic datalogger traffic to the input topic (after a backfill of history)."""
        if loggers < 1 or devices < 1 or rate <= 0 or not 0 <= invalid_ratio <= 1 or not 0 <= move_rate <= 1:
            raise click.UsageError("--loggers, --devices and --rate must be positive; "
                                   "--invalid-ratio and --move-rate from 0 to 1")
        if backfill < 0 or backfill_every < 1:
            raise click.UsageError("--backfill must be 0 or more hours, --backfill-every at least 1 s")
        await app.ensure_topics()
        await app.maybe_start_producer()
        sim = Simulator(loggers=loggers, devices=devices, invalid_ratio=invalid_ratio, seed=seed, move_rate=move_rate)
        if backfill:
            await _send_backfill(app, topics, sim, backfill, backfill_every)
        await _send_live(app, topics, sim, rate, duration)


async def _send_backfill(app: HumidityApp, topics: Topics, sim: Simulator, hours: float, every: float) -> None:
    sent = 0
    for message in sim.backfill(hours, time.time(), every):
        topics.input.send_soon(value=message)
        sent += 1
        if sent % 1000 == 0:
            await asyncio.sleep(0)  # let the producer drain its buffer
    await app.producer.flush()
    click.echo(f"simulate: backfilled {hours:g} h of history ({sent} readings)", err=True)


async def _send_live(app: HumidityApp, topics: Topics, sim: Simulator, rate: float, duration: float | None) -> None:
    """At ``rate`` messages a second, for ``duration`` seconds or until stopped."""
    started = time.monotonic()
    sent = 0
    last_report = started
    tick = 0.05
    try:
        while duration is None or time.monotonic() - started < duration:
            elapsed = time.monotonic() - started
            due = int(elapsed * rate) + 1 - sent
            for _ in range(max(0, due)):
                topics.input.send_soon(value=sim.next_message(time.time()))
                sent += 1
            now = time.monotonic()
            if now - last_report >= 10:
                click.echo(f"simulate: {sent} messages sent ({sent / (now - started):,.0f} msg/s)", err=True)
                last_report = now
            await asyncio.sleep(tick)
    finally:
        await app.producer.flush()
        elapsed = max(time.monotonic() - started, 1e-9)
        click.echo(f"simulate: sent {sent} messages in {elapsed:.1f} s ({sent / elapsed:,.0f} msg/s)")
