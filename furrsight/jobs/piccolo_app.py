from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.jobs.tables import Job

APP_CONFIG = AppConfig(
    app_name="jobs",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[Job],
    migration_dependencies=[],
    commands=[],
)
