from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.search.tables import BreedTag

APP_CONFIG = AppConfig(
    app_name="search",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[BreedTag],
    migration_dependencies=["furrsight.images.piccolo_app"],
    commands=[],
)
