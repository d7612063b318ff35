from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.exports.tables import DatasetExport, DatasetVersion, VersionItem

APP_CONFIG = AppConfig(
    app_name="exports",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[DatasetVersion, VersionItem, DatasetExport],
    migration_dependencies=["furrsight.pairs.piccolo_app"],
    commands=[],
)
