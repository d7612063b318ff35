from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.images.tables import Image, Source, Takedown

APP_CONFIG = AppConfig(
    app_name="images",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[Image, Source, Takedown],
    migration_dependencies=["furrsight.jobs.piccolo_app"],
    commands=[],
)
