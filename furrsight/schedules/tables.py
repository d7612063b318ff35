"""The schedules table: one row per recurring job, with the last slot it fired for."""

from piccolo.columns import JSON, Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Schedule(Table, tablename="schedules"):
    id = Serial(primary_key=True, db_column_name="id")
    name = Varchar(length=128)
    action = Varchar(length=64)  # a name in the registry of schedulable actions (service.ACTIONS)
    params = JSON(default="{}")
    cron = Varchar(length=128, null=True, default=None)  # five-field cron, UTC; or interval_s
    interval_s = Integer(null=True, default=None)
    enabled = Boolean(default=True)
    # The slot (epoch seconds) last fired or skipped: advanced in a write transaction before the
    # job is made, so a restarted scheduler never fires a slot twice.
    last_slot = Integer(default=0)
    last_fired_at = Timestamptz(null=True, default=None)
    last_job_id = Integer(null=True, default=None)
    last_note = Text(default="")  # what happened at the last firing (missed slots, an error)
    fires = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
