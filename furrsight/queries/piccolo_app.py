from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.queries.tables import Query

APP_CONFIG = AppConfig(
    app_name="queries",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[Query],
    migration_dependencies=[],
    commands=[],
)
