from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.scraping.tables import ScrapeUrl

APP_CONFIG = AppConfig(
    app_name="scraping",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[ScrapeUrl],
    migration_dependencies=["furrsight.jobs.piccolo_app"],
    commands=[],
)
