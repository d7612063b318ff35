"""The jobs table: one row per background job, the source of truth for its state."""

from piccolo.columns import JSON, Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Job(Table, tablename="jobs"):
    id = Serial(primary_key=True, db_column_name="id")
    kind = Varchar(length=64, index=True)  # also the name of the Dramatiq actor that runs it
    params = JSON(default="{}")
    status = Varchar(length=16, default="queued", index=True)
    progress_done = Integer(default=0)
    progress_total = Integer(default=0)
    counters = JSON(default="{}")
    error = Text(null=True, default=None)
    log_path = Text(default="")
    creator = Varchar(length=128, null=True, default=None)
    attempts = Integer(default=0)  # deliveries of the current run (a redelivery after a crash adds one)
    run_token = Varchar(length=32, default="")  # the current run; a message with another token is stale
    cancel_requested = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
