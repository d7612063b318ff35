#!/usr/bin/env bash
# FurrSight one-line installer for Debian/Ubuntu, as root:
#   curl -fsSL <your mirror>/installer/install.sh | sudo bash
#   (or, from a checkout:  sudo bash installer/install.sh)
#
# Installs the system packages (python3-venv, a compiler and CMake for llama-cpp-python,
# Tesseract with its English model for collage captions, and valkey-server where the
# distribution ships it, else redis-server), a `furrsight` system user,
# the code in /opt/furrsight with its virtualenv, /etc/furrsight/furrsight.env, the data
# directory /var/lib/furrsight, and the two systemd units; migrates the database and starts the
# services. Re-running it upgrades in place. --dry-run prints the steps without doing them.
set -euo pipefail

PREFIX=${FURRSIGHT_PREFIX:-/opt/furrsight}
DATA=${FURRSIGHT_DATA:-/var/lib/furrsight}
ETC=${FURRSIGHT_ETC:-/etc/furrsight}
REPO=${FURRSIGHT_REPO:-}        # a git URL to clone; default: the checkout this script is in
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1

run() { echo "+ $*"; [ "$DRY" = 1 ] || "$@"; }
say() { echo "==> $*"; }

if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh must run as root (sudo bash installer/install.sh)" >&2; exit 1
fi

say "system packages"
broker_pkg=redis-server
if [ "$DRY" = 0 ]; then apt-get update -qq; fi
if apt-cache show valkey-server >/dev/null 2>&1; then broker_pkg=valkey-server; fi
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-dev g++ cmake git tesseract-ocr tesseract-ocr-eng "$broker_pkg"
broker_unit=${broker_pkg}

say "user and folders"
id furrsight >/dev/null 2>&1 || run useradd --system --home-dir "$DATA" --shell /usr/sbin/nologin furrsight
run install -d -o furrsight -g furrsight -m 0750 "$DATA"
run install -d -m 0755 "$ETC" "$PREFIX"

say "code in $PREFIX"
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." 2>/dev/null && pwd || true)
if [ -n "$REPO" ]; then
  if [ -d "$PREFIX/.git" ]; then run git -C "$PREFIX" pull --ff-only; else run git clone --depth 1 "$REPO" "$PREFIX"; fi
elif [ -n "$src" ] && [ -f "$src/pyproject.toml" ] && [ "$src" != "$PREFIX" ]; then
  run tar -C "$src" --exclude=.venv --exclude=.git --exclude='__pycache__' -cf "$PREFIX/.src.tar" .
  run tar -C "$PREFIX" -xf "$PREFIX/.src.tar"
  run rm -f "$PREFIX/.src.tar"
fi
run python3 -m venv "$PREFIX/.venv"
run "$PREFIX/.venv/bin/pip" install -q --upgrade pip
# Editable: templates/, plugins/ and models/ are read from the code folder.
run env CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$PREFIX/.venv/bin/pip" install -q -e "$PREFIX"

say "configuration in $ETC"
if [ ! -f "$ETC/furrsight.env" ]; then
  run install -m 0640 -g furrsight "$PREFIX/systemd/furrsight.env.example" "$ETC/furrsight.env"
fi

say "services"
run install -m 0644 "$PREFIX/systemd/furrsight-web.service" "$PREFIX/systemd/furrsight-worker.service" /etc/systemd/system/
run systemctl daemon-reload
run systemctl enable --now "$broker_unit"
run runuser -u furrsight -- env $(grep -v '^#' "$ETC/furrsight.env" 2>/dev/null | xargs) "$PREFIX/.venv/bin/furrsight" migrate
run systemctl enable --now furrsight-web furrsight-worker

say "done"
echo "Open http://127.0.0.1:8000/ (or put a TLS reverse proxy in front)."
echo "First run: the setup code is in the web log: journalctl -u furrsight-web | grep -i 'setup code'"
echo "Check the installation: sudo -u furrsight env \$(cat $ETC/furrsight.env | xargs) $PREFIX/.venv/bin/furrsight doctor"
