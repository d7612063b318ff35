"""``furrsight status`` outside the web process: its own database handle and broker client, and
the private broker of a running ``furrsight up`` when no broker URL is set."""

from __future__ import annotations

import msgspec

from furrsight.db.setup import open_database
from furrsight.jobs.broker import valkey_client
from furrsight.runstatus import live_broker_url
from furrsight.settings import Settings
from furrsight.status.service import collect


async def report_lines(settings: Settings) -> tuple[list[tuple[str, str, str]], bool]:
    """(state, name, detail) per item, and whether something is down."""
    if not settings.broker_url:
        settings = msgspec.structs.replace(settings, broker_url=live_broker_url(settings.data_path) or "")
    open_database(settings)
    client = valkey_client(settings) if settings.broker_url else None
    try:
        report = await collect(settings, client)
    finally:
        if client is not None:
            await client.aclose()
    return [(i.state, i.name, i.detail) for i in report.items], bool(report.down)
