"""Breed tags: each image's top breed from the active classifying model (vectors live in vec0
tables owned by ``vectors.py``, not here)."""

from piccolo.columns import Boolean, Float, ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from furrsight.images.tables import Image


class BreedTag(Table, tablename="breed_tags"):
    id = Serial(primary_key=True, db_column_name="id")
    image = ForeignKey(references=Image, unique=True, index=True)
    model = Varchar(length=64)
    breed = Varchar(length=64, null=True, default=None, index=True)  # None: not a dog
    confidence = Float(default=0.0)
    dog_probability = Float(default=0.0)
    is_dog = Boolean(default=False, index=True)
    tagged_at = Timestamptz(default=TimestamptzNow())
