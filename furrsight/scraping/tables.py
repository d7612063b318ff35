"""Every URL each scrape tried, with its outcome: skip what was fetched, retry what failed."""

from piccolo.columns import JSON, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from furrsight.jobs.tables import Job


class ScrapeUrl(Table, tablename="scrape_urls"):
    id = Serial(primary_key=True, db_column_name="id")
    key = Text(unique=True)  # "<job id> <url>": one row per URL per run (a redelivered run updates it)
    url = Text(index=True)
    plugin = Varchar(length=64)
    status = Varchar(length=16, index=True)  # fetched, failed, robots
    reason = Varchar(length=64, null=True, default=None)
    message = Text(null=True, default=None)
    image_id = Integer(null=True, default=None)
    candidate = JSON(default="{}")  # the candidate's provenance, to retry it alone
    job = ForeignKey(references=Job, null=True, default=None, on_delete=OnDelete.set_null, index=True)
    updated_at = Timestamptz(default=TimestamptzNow())
