"""Commands for feeding the service: ``faust -A app replay|simulate`` (the edge)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click
from faust.cli import option

from humidity.application import HumidityApp
from humidity.core.simulation import Simulator
from humidity.declare.topics import Topics


def _lines(path: Path):
    with path.open("rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                line = line[:-1]
                if line.endswith(b"\r"):
                    line = line[:-1]
            yield line


def register(app: HumidityApp, topics: Topics) -> None:
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


    @app.command(
        option("--loggers", type=int, default=2000, show_default=True, help="Number of dataloggers (sensors)."),
        option("--devices", type=int, default=50, show_default=True, help="Number of imaging devices."),
        option("--rate", type=float, default=3334.0, show_default=True, help="Messages per second."),
        option("--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C)."),
        option("--invalid-ratio", type=float, default=0.0, show_default=True,
               help="Share of deliberately malformed messages (0 to 1)."),
        option("--seed", type=int, default=None, help="Random seed, for repeatable traffic."),
        option("--backfill", type=float, default=0.0, show_default=True,
               help="First send this many HOURS of history (a reading per logger per --backfill-every)."),
        option("--backfill-every", type=float, default=120.0, show_default=True,
               help="Seconds between a logger's backfilled readings."),
    )
    async def simulate(self, loggers: int, devices: int, rate: float, duration, invalid_ratio: float, seed,
                       backfill: float, backfill_every: float) -> None:
        """Send live, realistic datalogger traffic to the input topic (after a backfill of history)."""
        if loggers < 1 or devices < 1 or rate <= 0 or not 0 <= invalid_ratio <= 1:
            raise click.UsageError("--loggers, --devices and --rate must be positive; --invalid-ratio from 0 to 1")
        if backfill < 0 or backfill_every < 1:
            raise click.UsageError("--backfill must be 0 or more hours, --backfill-every at least 1 s")
        await app.ensure_topics()
        await app.maybe_start_producer()
        sim = Simulator(loggers=loggers, devices=devices, invalid_ratio=invalid_ratio, seed=seed)
        if backfill:
            sent = 0
            for message in sim.backfill(backfill, time.time(), backfill_every):
                topics.input.send_soon(value=message)
                sent += 1
                if sent % 1000 == 0:
                    await asyncio.sleep(0)  # let the producer drain its buffer
            await app.producer.flush()
            click.echo(f"simulate: backfilled {backfill:g} h of history ({sent} readings)", err=True)
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
