"""Breeds and services: the entries every label (model, VLM, human) resolves to.

``key`` is the stable id from the shipped data files (never changes, so a later release can add
entries without duplicating ones an admin renamed); ``name`` is what people see. A merged entry is
retired and points at the entry that kept its labels.
"""

from piccolo.columns import JSON, Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Breed(Table, tablename="breeds"):
    id = Serial(primary_key=True, db_column_name="id")
    key = Varchar(length=64, unique=True)
    name = Varchar(length=96, unique=True)
    aliases = JSON(default=[])
    size = Varchar(length=16, default="medium")  # toy, small, medium, large, giant
    coat = Varchar(length=16, default="combination")  # curly, double, wire, silky, smooth, hairless, combination
    fci_group = Integer(null=True, default=None)  # 1-10; None: not FCI-recognised
    retired = Boolean(default=False)
    merged_into = Integer(null=True, default=None)  # the breed that took over this one's labels
    updated_at = Timestamptz(default=TimestamptzNow())


class Service(Table, tablename="services"):
    id = Serial(primary_key=True, db_column_name="id")
    key = Varchar(length=64, unique=True)
    name = Varchar(length=96, unique=True)
    description = Text(default="")
    aliases = JSON(default=[])
    position = Integer(default=0)  # order on the review screen (keys 1-9 toggle the first nine)
    retired = Boolean(default=False)
    merged_into = Integer(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())
