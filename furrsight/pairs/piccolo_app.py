from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.pairs.tables import MiningMark, Pair, PairHistory, PairService

APP_CONFIG = AppConfig(
    app_name="pairs",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[Pair, PairService, PairHistory, MiningMark],
    migration_dependencies=["furrsight.images.piccolo_app"],
    commands=[],
)
