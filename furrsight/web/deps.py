"""Names of what the app injects into handlers (Litestar 2.23+ wants them marked)."""

from typing import TypeAlias

from dramatiq import Broker
from litestar.di import NamedDependency

from furrsight.settings import Settings
from furrsight.store import FileStore

SettingsDep: TypeAlias = NamedDependency[Settings]
StoreDep: TypeAlias = NamedDependency[FileStore]
BrokerDep: TypeAlias = NamedDependency[Broker]
