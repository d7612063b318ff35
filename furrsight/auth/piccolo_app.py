from pathlib import Path

from piccolo.conf.apps import AppConfig

from furrsight.auth.tables import ApiToken, AuditEntry, User

APP_CONFIG = AppConfig(
    app_name="auth",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[User, ApiToken, AuditEntry],
    migration_dependencies=[],
    commands=[],
)
