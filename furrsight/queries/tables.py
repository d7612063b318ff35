"""Search queries (phase 1): written by the LLM, a template, or a person."""

from piccolo.columns import Boolean, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Query(Table, tablename="queries"):
    id = Serial(primary_key=True, db_column_name="id")
    text = Text()
    norm = Text(unique=True)  # the de-duplication key: case, spacing, punctuation and word order folded
    breed = Varchar(length=64, null=True, default=None)
    service = Varchar(length=64, null=True, default=None)
    language = Varchar(length=8, default="en")
    origin = Varchar(length=16, default="manual")  # llm, template, manual
    enabled = Boolean(default=True, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
