"""``make migrations``: write an auto migration for every app whose tables changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from furrsight.db.piccolo_conf import APP_REGISTRY


def main() -> int:
    piccolo = str(Path(sys.executable).with_name("piccolo"))
    for name in APP_REGISTRY.app_configs:
        result = subprocess.run([piccolo, "migrations", "new", name, "--auto"], capture_output=True, text=True)
        changed = "No changes" not in result.stdout
        print(f"{name}: {'new migration written' if changed else 'up to date'}")
        if result.returncode:
            print(result.stdout, result.stderr, file=sys.stderr)
            return result.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
