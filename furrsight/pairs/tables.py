"""Pairs, their service labels, their history, and where mining stopped.

A pair is two images, ``before`` and ``after``; the same two images are at most one pair whichever
way round (a unique index on (min, max) of the two ids, created by the migration) and never one
image twice (a trigger). Labels keep their ``source`` (model, vlm, human) and confidence. Every
change increments ``version`` and writes a history row; a write must name the version it read.
"""

from piccolo.columns import JSON, Boolean, ForeignKey, Integer, Real, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from furrsight.images.tables import Image


class Pair(Table, tablename="pairs"):
    id = Serial(primary_key=True, db_column_name="id")
    before = ForeignKey(references=Image, index=True)  # ON DELETE CASCADE: a pair goes with its images
    after = ForeignKey(references=Image, index=True)
    origin = Varchar(length=16, index=True)  # collage, post, similar, manual
    status = Varchar(
        length=16, default="candidate", index=True
    )  # candidate, analysed, accepted, rejected, analysis_failed
    reason = Text(null=True, default=None)  # why analysis failed, or why the model rejected it
    reject_reason = Varchar(length=32, null=True, default=None)  # a reviewer's (or the model's) reason code
    note = Text(null=True, default=None)
    group_key = Text(null=True, default=None)  # the post / page the two images were found in
    mining_score = Real(null=True, default=None)  # the same-dog similarity that made it a candidate
    confidence = Real(null=True, default=None, index=True)  # the pair's weakest label (review order: least first)
    breed_id = Integer(null=True, default=None, index=True)  # a taxonomy breed
    breed_source = Varchar(length=8, null=True, default=None)  # model, vlm, human
    breed_confidence = Real(null=True, default=None)
    same_dog = Boolean(null=True, default=None)
    same_dog_confidence = Real(null=True, default=None)
    is_grooming = Boolean(null=True, default=None)  # is it a grooming before/after at all
    order_source = Varchar(length=8, null=True, default=None)
    order_confidence = Real(null=True, default=None)
    caption = Text(null=True, default=None)
    caption_source = Varchar(length=8, null=True, default=None)
    analysis = JSON(null=True, default=None)  # the raw model output, the model, the prompt version
    model = Varchar(length=96, null=True, default=None)
    prompt_version = Varchar(length=32, null=True, default=None)
    version = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    reviewed_by = Varchar(length=64, null=True, default=None)
    reviewed_at = Timestamptz(null=True, default=None)


class PairService(Table, tablename="pair_services"):
    id = Serial(primary_key=True, db_column_name="id")
    pair = ForeignKey(references=Pair, index=True)
    service_id = Integer(index=True)  # a taxonomy service
    source = Varchar(length=8)  # model, vlm, human
    confidence = Real(null=True, default=None)


class PairHistory(Table, tablename="pair_history"):
    id = Serial(primary_key=True, db_column_name="id")
    pair = ForeignKey(references=Pair, index=True)
    at = Timestamptz(default=TimestamptzNow())
    user = Varchar(length=64, null=True, default=None)  # None: the system (mining, a model)
    field = Varchar(length=32)
    old = JSON(null=True, default=None)
    new = JSON(null=True, default=None)
    via = Varchar(length=16)  # review, bulk, api, page, model, mining
    batch = Varchar(length=36, null=True, default=None, index=True)  # one bulk action: undone together
    version = Integer(default=1)  # the pair's version this change made


class MiningMark(Table, tablename="pair_mining_marks"):
    """How far mining has read: the highest image and source ids it has seen (re-runs mine only
    what came after)."""

    id = Serial(primary_key=True, db_column_name="id")
    name = Varchar(length=32, unique=True)
    value = Integer(default=0)
