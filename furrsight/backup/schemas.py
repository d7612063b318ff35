"""What the backup API takes and answers."""

import msgspec


class BackupRequest(msgspec.Struct, forbid_unknown_fields=True):
    models: bool = False  # also copy the installed models (large; `furrsight models pull` can fetch them again)


class BackupOut(msgspec.Struct):
    name: str  # the folder under <data>/backups/
    created: str
    files: int
    bytes: int
    images: int
    models: bool
