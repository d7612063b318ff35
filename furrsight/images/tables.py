"""Images (one row per distinct content) and sources (every place an image was seen)."""

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from furrsight.jobs.tables import Job


class Image(Table, tablename="images"):
    id = Serial(primary_key=True, db_column_name="id")
    sha256 = Varchar(length=64, unique=True)
    format = Varchar(length=16)
    mime = Varchar(length=64)
    width = Integer()
    height = Integer()
    bytes = Integer()
    state = Varchar(length=16, default="stored", index=True)
    created_at = Timestamptz(default=TimestamptzNow())


class Source(Table, tablename="sources"):
    id = Serial(primary_key=True, db_column_name="id")
    image = ForeignKey(references=Image, index=True)
    kind = Varchar(length=16)  # upload, import, scrape
    url = Text(null=True, default=None)
    page_url = Text(null=True, default=None)
    file_name = Text(null=True, default=None)  # the original name or path of an upload/import
    title = Text(null=True, default=None)
    alt_text = Text(null=True, default=None)
    author = Text(null=True, default=None)
    license = Text(null=True, default=None)
    plugin = Varchar(length=64, null=True, default=None)
    query = Text(null=True, default=None)
    group_key = Text(null=True, default=None, index=True)
    job = ForeignKey(references=Job, null=True, default=None, on_delete=OnDelete.set_null)
    seen_at = Timestamptz(default=TimestamptzNow())
