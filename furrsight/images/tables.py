"""Images (one row per distinct content) and sources (every place an image was seen)."""

from piccolo.columns import JSON, ForeignKey, Integer, OnDelete, Real, Serial, Text, Timestamptz, Varchar
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
    state = Varchar(length=16, default="stored", index=True)  # stored, processed, failed
    created_at = Timestamptz(default=TimestamptzNow())
    reason = Text(null=True, default=None)  # why the state is `failed`
    phash = Varchar(length=16, null=True, default=None)  # 64-bit perceptual hash, hex
    near_dup_group = Integer(null=True, default=None, index=True)  # the smallest image id of the group
    flags = Text(default="")  # ",small,blurry," (delimited so that LIKE '%,small,%' filters)
    blur = Real(null=True, default=None)  # variance of the Laplacian at 512 px
    parent_id = Integer(null=True, default=None, index=True)  # the collage this panel was cut from
    crop = JSON(null=True, default=None)  # [left, top, right, bottom] in the parent's upright pixels
    panel = Varchar(length=8, null=True, default=None)  # before / after
    panel_confidence = Real(null=True, default=None)
    split_mode = Varchar(length=8, null=True, default=None)  # None: auto; manual; never (un-split by hand)


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


class Takedown(Table, tablename="takedowns"):
    """An image taken down (a rights holder asked, or it should never have been shared): left
    out of every later dataset version with its pairs. ``purged_at``: its original is gone from
    the store (the row stays, so the image is never ingested and exported again unseen)."""

    id = Serial(primary_key=True, db_column_name="id")
    image = ForeignKey(references=Image, unique=True, index=True)
    reason = Text()
    by = Varchar(length=64, null=True, default=None)
    at = Timestamptz(default=TimestamptzNow())
    purged_at = Timestamptz(null=True, default=None)
