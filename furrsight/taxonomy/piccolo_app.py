from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.taxonomy.tables import Breed, Service

APP_CONFIG = AppConfig(
    app_name="taxonomy",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[Breed, Service],
    migration_dependencies=[],
    commands=[],
)
