"""One typed settings object, read once: embedded defaults < TOML file < ``FURRSIGHT_*`` variables.

Every field carries a one-line description (``Doc``); ``tests/test_settings.py`` fails when one
does not, and ``furrsight settings`` prints them all. Environment names are the field path in
upper case joined by ``_``: ``data_dir`` -> ``FURRSIGHT_DATA`` (the one short alias),
``scraping.allowed_networks`` -> ``FURRSIGHT_SCRAPING_ALLOWED_NETWORKS``. Lists are
comma-separated in the environment.
"""

from furrsight.settings.loading import ENV_ALIASES, ENV_PREFIX, SettingsError, iter_settings_docs, load_settings
from furrsight.settings.sections import (
    AuthSettings,
    Doc,
    ExportSettings,
    IngestSettings,
    JobSettings,
    MetricsSettings,
    PairSettings,
    QuerySettings,
    ReviewSettings,
    ScrapingSettings,
    SearchSettings,
    Settings,
    StatusSettings,
    TaxonomySettings,
)

__all__ = [
    "ENV_ALIASES", "ENV_PREFIX", "AuthSettings", "Doc", "ExportSettings", "IngestSettings", "JobSettings",
    "MetricsSettings", "PairSettings", "QuerySettings", "ReviewSettings", "ScrapingSettings", "SearchSettings",
    "Settings", "SettingsError", "StatusSettings", "TaxonomySettings", "iter_settings_docs", "load_settings",
]  # fmt: skip
