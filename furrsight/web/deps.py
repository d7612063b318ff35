"""Names of what the app injects into handlers (Litestar 2.23+ wants them marked)."""

from typing import Any, Callable, TypeAlias

from dramatiq import Broker
from litestar.di import NamedDependency

from furrsight.settings import Settings
from furrsight.store import FileStore

SettingsDep: TypeAlias = NamedDependency[Settings]
StoreDep: TypeAlias = NamedDependency[FileStore]
BrokerDep: TypeAlias = NamedDependency[Broker]
# name -> value -> a subquery of image ids: filters later stages offer the gallery (see app.py)
ImageSubsetsDep: TypeAlias = NamedDependency[dict[str, Callable[[str], Any]]]
# image ids -> what later stages say about each (breed tag, pairs): the gallery's cards (see app.py)
ImageLabelsDep: TypeAlias = NamedDependency[Callable[[list[int]], Any]]
