"""Dataset versions (frozen: never updated once written), their pairs, and the exports written
from them.

A version row and its items are written in one transaction at the end of the version job; an
export row says where its files are and what it left out (images taken down since).
"""

from piccolo.columns import JSON, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class DatasetVersion(Table, tablename="dataset_versions"):
    id = Serial(primary_key=True, db_column_name="id")
    name = Varchar(length=128, unique=True)
    notes = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    created_by = Varchar(length=64, null=True, default=None)
    job_id = Integer(null=True, default=None, index=True)  # the job that made it (a retry finds it)
    selection = JSON(default={})  # the request: filters, licences, ratios, seed
    settings = JSON(default={})  # the settings used: thresholds, allowed licences
    class_names = JSON(default=[])  # the breed class label names, index = label
    counts = JSON(default={})  # pairs, per split, left out per reason
    report = JSON(default={})  # breed distribution per split, leak check
    excluded = JSON(default=[])  # [{pair_id, reason}] what the selection matched but left out
    content_hash = Varchar(length=64)  # SHA-256 over items, class names, settings, selection


class VersionItem(Table, tablename="dataset_version_items"):
    """One pair of a version, with its labels and both images' provenance as they were."""

    id = Serial(primary_key=True, db_column_name="id")
    version = ForeignKey(references=DatasetVersion, index=True)
    pair_id = Integer(index=True)
    split = Varchar(length=16)  # train, validation, test
    component = Varchar(length=64)  # the key of its leak component
    before_id = Integer(index=True)
    after_id = Integer(index=True)
    labels = JSON(default={})
    before = JSON(default={})  # sha256, format, title, author, license, urls
    after = JSON(default={})


class DatasetExport(Table, tablename="dataset_exports"):
    id = Serial(primary_key=True, db_column_name="id")
    version = ForeignKey(references=DatasetVersion, index=True)
    format = Varchar(length=16)  # hf-parquet, imagefolder, webdataset
    status = Varchar(length=16, default="queued")  # queued, building, ready, failed, cancelled
    job_id = Integer(null=True, default=None, index=True)
    path = Text(null=True, default=None)  # relative to the data directory, once ready
    files = Integer(default=0)
    bytes = Integer(default=0)
    pairs = Integer(default=0)
    left_out = JSON(default=[])  # [{pair_id, reason}] pairs of the version not written (taken down)
    report = JSON(default={})  # leak check measured on the exported images, split sizes
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
