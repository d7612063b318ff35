from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.schedules.tables import Schedule

APP_CONFIG = AppConfig(
    app_name="schedules",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[Schedule],
    migration_dependencies=[],
    commands=[],
)
