#!/usr/bin/env bash
# FurrSight installer for Debian/Ubuntu, as root (docs/install.md):
#   sudo bash installer/install.sh                                    from a checkout
#   curl -fsSL <mirror>/installer/install.sh | sudo FURRSIGHT_REPO=<git URL> bash
#   sudo bash installer/install.sh --uninstall [--purge]              remove it
# Re-running it upgrades in place: stop, new code, dependencies, migrate, start; the data and an
# existing env file are never touched. --dry-run prints the steps without doing them.
#
# It installs the missing system packages, a system user, the code and its virtualenv in the
# prefix (with the CUDA runtime wheels where nvidia-smi lists a GPU), the env file, the data
# folder, the systemd units and <prefix>/bin/furrsight-service; then starts the web process and
# the workers and waits for /health. Where systemd is not PID 1 (containers, CI) they run under
# `furrsight up`, started detached by furrsight-service.
set -euo pipefail

PREFIX=${FURRSIGHT_PREFIX:-/opt/furrsight}
DATA=${FURRSIGHT_DATA:-/var/lib/furrsight}
ETC=${FURRSIGHT_ETC:-/etc/furrsight}
SERVICE_USER=${FURRSIGHT_USER:-furrsight}
UNIT_DIR=${FURRSIGHT_UNIT_DIR:-/etc/systemd/system}
HOST=${FURRSIGHT_HOST:-127.0.0.1}
PORT=${FURRSIGHT_PORT:-8000}
REPO=${FURRSIGHT_REPO:-}           # a git URL to install from; default: the checkout this script is in
REF=${FURRSIGHT_REF:-}             # its branch or tag; default: the repository's default branch
SYSTEMD=${FURRSIGHT_SYSTEMD:-auto} # auto | yes | no (no: the furrsight-service fallback)
PYTHON=/usr/bin/python3            # the distribution's: the service user must be able to run it
UNITS=(furrsight-web furrsight-worker furrsight-gpu-worker)
SERVICE_SCRIPT=$PREFIX/bin/furrsight-service
HEALTH_TIMEOUT_S=180
DRY=0 UNINSTALL=0 PURGE=0

run() { echo "+ $*"; [ "$DRY" = 1 ] || "$@"; }
say() { echo "==> $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

check_arguments() {
  for arg in "$@"; do
    case $arg in
      --dry-run) DRY=1 ;;
      --uninstall) UNINSTALL=1 ;;
      --purge) UNINSTALL=1 PURGE=1 ;;
      *) echo "usage: install.sh [--dry-run] [--uninstall [--purge]]" >&2; exit 2 ;;
    esac
  done
  if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then die "run it as root (sudo bash installer/install.sh)"; fi
  for folder in "$PREFIX" "$DATA" "$ETC" "$UNIT_DIR"; do
    case $folder in /*) ;; *) die "$folder: give an absolute path" ;; esac
    case ${folder%/} in '' | /usr | /etc | /var | /var/lib | /opt | /home | /root | /tmp | /srv) die "$folder: refusing a system folder" ;; esac
  done
  case $SYSTEMD in
    auto) if [ -d /run/systemd/system ]; then SYSTEMD=yes; else SYSTEMD=no; fi ;; # sd_booted()'s test
    yes | no) ;;
    *) die "FURRSIGHT_SYSTEMD is auto, yes or no, not $SYSTEMD" ;;
  esac
}

stop_services() {
  if [ "$SYSTEMD" = yes ]; then
    for unit in "${UNITS[@]}"; do
      if [ -f "$UNIT_DIR/$unit.service" ]; then run systemctl stop "$unit"; fi
    done
  fi
  if [ -x "$SERVICE_SCRIPT" ]; then run "$SERVICE_SCRIPT" stop; fi
}

uninstall() {
  say "stopping FurrSight"
  stop_services
  say "removing the code ($PREFIX), furrsight-service and the units"
  for unit in "${UNITS[@]}"; do
    if [ "$SYSTEMD" = yes ] && [ -f "$UNIT_DIR/$unit.service" ]; then run systemctl disable "$unit"; fi
    run rm -f "$UNIT_DIR/$unit.service"
  done
  if [ "$SYSTEMD" = yes ]; then run systemctl daemon-reload; fi
  run rm -rf "$PREFIX"
  if [ "$PURGE" = 1 ]; then
    say "purging the data ($DATA), the configuration ($ETC) and the user $SERVICE_USER"
    run rm -rf "$DATA" "$ETC"
    if id "$SERVICE_USER" >/dev/null 2>&1; then run userdel "$SERVICE_USER"; fi
  else
    say "kept the data in $DATA and the configuration in $ETC (--purge removes them and the user)"
  fi
}

system_packages() {
  say "system packages"
  local packages=(python3 python3-venv python3-dev g++ cmake git tesseract-ocr tesseract-ocr-eng) missing=()
  for package in "${packages[@]}"; do installed "$package" || missing+=("$package"); done
  BROKER=redis-server
  if installed valkey-server; then BROKER=valkey-server
  elif ! installed redis-server; then
    if apt-cache show valkey-server >/dev/null 2>&1; then BROKER=valkey-server; fi
    missing+=("$BROKER")
  fi
  if [ ${#missing[@]} = 0 ]; then
    echo "all there (${packages[*]} $BROKER): apt-get skipped"
  else
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

user_and_folders() {
  say "user $SERVICE_USER and folders"
  if ! id "$SERVICE_USER" >/dev/null 2>&1; then
    run useradd --system --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
  fi
  run install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$DATA"
  run install -d -m 0755 "$ETC" "$PREFIX" "$PREFIX/bin"
}

code() {
  say "code in $PREFIX"
  local src="" script=${BASH_SOURCE[0]:-}
  if [ -n "$REPO" ]; then
    CLONE=$(mktemp -d) && src=$CLONE
    trap 'rm -rf "$CLONE"' EXIT
    run git clone -q --depth 1 ${REF:+--branch "$REF"} "$REPO" "$src"
  elif [ -n "$script" ] && [ -f "$(dirname "$script")/../pyproject.toml" ]; then
    src=$(cd "$(dirname "$script")/.." && pwd)
  else
    die "not run from a checkout: set FURRSIGHT_REPO to a git URL"
  fi
  [ "$src" != "$PREFIX" ] || return 0
  # The new code replaces the old (files removed upstream go too); the virtualenv and bin/ stay.
  run find "$PREFIX" -mindepth 1 -maxdepth 1 ! -name .venv ! -name bin -exec rm -rf {} +
  # Read-only listing of a checkout another user owns: git would refuse it as "dubious ownership".
  local git=(git -c safe.directory='*' -C "$src")
  if [ "$DRY" = 0 ] && "${git[@]}" rev-parse --git-dir >/dev/null 2>&1; then
    echo "+ copy what git tracks or would track in $src (no .venv, caches, node_modules) to $PREFIX"
    "${git[@]}" ls-files -z -co --exclude-standard |
      while IFS= read -r -d '' f; do if [ -e "$src/$f" ]; then printf '%s\0' "$f"; fi; done |
      tar -C "$src" --null -T - -cf - | tar -C "$PREFIX" --no-same-owner -xf -
  else
    run tar -C "$src" --exclude=.git --exclude=.venv --exclude=node_modules --exclude=__pycache__ \
      --exclude='.*_cache' --exclude=bench/_work -cf "$PREFIX/.src.tar" .
    run tar -C "$PREFIX" --no-same-owner -xf "$PREFIX/.src.tar"
    run rm -f "$PREFIX/.src.tar"
  fi
  # Root's, readable by all: a checkout made with umask 077 must still be readable by the service.
  run find "$PREFIX" -path "$PREFIX/.venv" -prune -o -exec chmod a+rX {} +
}

dependencies() {
  say "Python dependencies"
  local pip=("$PREFIX/.venv/bin/pip" install -q) extra=() cmake_args=${CMAKE_ARGS:--DGGML_NATIVE=OFF} nvcc
  if [ ! -x "$PREFIX/.venv/bin/python" ]; then
    run "$PYTHON" -m venv "$PREFIX/.venv"
    run "${pip[@]}" --upgrade pip # the distribution's pip 23 resolves an upgrade 2-3 times slower
  fi
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    say "GPU: $(nvidia-smi -L | head -n 1); installing the CUDA 13 and cuDNN 9 runtime wheels for onnxruntime-gpu"
    extra+=("onnxruntime-gpu[cuda,cudnn]")
    nvcc=$(command -v nvcc || true)
    if [ -z "$nvcc" ] && [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then nvcc=${CUDA_HOME:-/usr/local/cuda}/bin/nvcc; fi
    if [ -z "$nvcc" ]; then
      say "no CUDA toolkit (nvcc): GGUF models (the query LLM, the pair VLM) will run on the CPU." \
        "llama-cpp-python is compiled on this machine (PyPI has only its source) and needs nvcc to use" \
        "the GPU: install NVIDIA's CUDA toolkit and run this installer again to rebuild it"
    elif "$PREFIX/.venv/bin/python" -c 'import llama_cpp, sys; sys.exit(not llama_cpp.llama_supports_gpu_offload())' 2>/dev/null; then
      say "llama-cpp-python already runs GGUF models on the GPU"
    else
      say "CUDA toolkit found ($nvcc): building llama-cpp-python with CUDA, for GGUF models on the GPU (this takes a while)"
      # No cache: pip would reuse a cached CPU-only wheel whatever CMAKE_ARGS says.
      run env CUDACXX="$nvcc" CMAKE_ARGS="-DGGML_CUDA=on $cmake_args" "${pip[@]}" --no-cache-dir --force-reinstall --no-deps llama-cpp-python
    fi
  fi
  # Editable: templates/, plugins/ and models/ are read from the code folder.
  run env CMAKE_ARGS="$cmake_args" "${pip[@]}" -e "$PREFIX" "${extra[@]}"
}

configuration() {
  say "configuration in $ETC"
  if [ -f "$ETC/furrsight.env" ]; then echo "kept $ETC/furrsight.env"; return 0; fi
  # Without systemd no broker service runs: `furrsight up` starts a private one when the URL is unset.
  local broker="s|^FURRSIGHT_BROKER_URL=|FURRSIGHT_BROKER_URL=|"
  [ "$SYSTEMD" = yes ] || broker="s|^FURRSIGHT_BROKER_URL=|# FURRSIGHT_BROKER_URL=|"
  echo "+ write $ETC/furrsight.env from systemd/furrsight.env.example"
  [ "$DRY" = 0 ] || return 0
  sed -e "s|^FURRSIGHT_DATA=.*|FURRSIGHT_DATA=$DATA|" -e "s|^FURRSIGHT_HOST=.*|FURRSIGHT_HOST=$HOST|" \
    -e "s|^FURRSIGHT_PORT=.*|FURRSIGHT_PORT=$PORT|" -e "$broker" \
    "$PREFIX/systemd/furrsight.env.example" >"$ETC/furrsight.env.new"
  chgrp "$SERVICE_USER" "$ETC/furrsight.env.new"
  chmod 0640 "$ETC/furrsight.env.new"
  mv "$ETC/furrsight.env.new" "$ETC/furrsight.env"
}

services() {
  say "services"
  # The units and furrsight-service, with this installation's folders and user.
  echo "+ write $SERVICE_SCRIPT, and ${UNITS[*]/%/.service} in $UNIT_DIR"
  if [ "$DRY" = 0 ]; then
    install -d -m 0755 "$UNIT_DIR"
    for unit in "${UNITS[@]}"; do
      sed -e "s|/opt/furrsight|$PREFIX|g" -e "s|/etc/furrsight|$ETC|g" -e "s|/var/lib/furrsight|$DATA|g" \
        -e "s|^User=furrsight$|User=$SERVICE_USER|" -e "s|^Group=furrsight$|Group=$SERVICE_USER|" \
        "$PREFIX/systemd/$unit.service" >"$UNIT_DIR/$unit.service"
      chmod 0644 "$UNIT_DIR/$unit.service"
    done
    sed -e "s|^PREFIX=.*|PREFIX=$PREFIX|" -e "s|^ETC=.*|ETC=$ETC|" -e "s|^SERVICE_USER=.*|SERVICE_USER=$SERVICE_USER|" \
      "$PREFIX/installer/furrsight-service" >"$SERVICE_SCRIPT"
    chmod 0755 "$SERVICE_SCRIPT"
  fi
  run "$SERVICE_SCRIPT" run migrate
  if [ "$SYSTEMD" = yes ]; then
    run systemctl daemon-reload
    run systemctl enable --now "$BROKER"
    run systemctl enable --now "${UNITS[@]}" # after an upgrade: started again (stopped before)
  else
    run "$SERVICE_SCRIPT" start
  fi
}

setting() { sed -n "s/^$1=//p" "$ETC/furrsight.env" 2>/dev/null | tail -n 1; }

wait_healthy() {
  # The settings the services actually use: an existing env file may differ from this run's.
  if [ "$DRY" = 0 ]; then
    DATA=$(setting FURRSIGHT_DATA) HOST=$(setting FURRSIGHT_HOST) PORT=$(setting FURRSIGHT_PORT)
    DATA=${DATA:-/var/lib/furrsight} HOST=${HOST:-127.0.0.1} PORT=${PORT:-8000}
  fi
  local probe=$HOST
  case $probe in 0.0.0.0 | '::' | '[::]') probe=127.0.0.1 ;; esac
  say "waiting for http://$probe:$PORT/health (up to $HEALTH_TIMEOUT_S s)"
  [ "$DRY" = 0 ] || return 0
  "$PREFIX/.venv/bin/python" - "http://$probe:$PORT/health" "$HEALTH_TIMEOUT_S" <<'EOF' && return 0
import sys, time, urllib.error, urllib.request
url, deadline, last = sys.argv[1], time.monotonic() + float(sys.argv[2]), "no answer"
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=5):
            sys.exit(0)
    except urllib.error.HTTPError as exc:
        last = f"{exc.code}: {exc.read().decode(errors='replace')[:500]}"
    except OSError as exc:
        last = str(exc)
    time.sleep(0.5)
print(f"/health did not answer 200 in time; last: {last}", file=sys.stderr)
sys.exit(1)
EOF
  if [ "$SYSTEMD" = yes ]; then die "FurrSight is not healthy: journalctl -u furrsight-web -u furrsight-worker -u furrsight-gpu-worker"; fi
  die "FurrSight is not healthy: see $DATA/logs/furrsight-service.log"
}

summary() {
  say "done"
  echo "FurrSight runs at http://$HOST:$PORT/ (put a TLS reverse proxy in front for other machines)"
  if [ "$DRY" = 1 ]; then :
  elif [ -f "$DATA/setup-code" ]; then echo "First run: open /setup and enter the setup code: $(cat "$DATA/setup-code")"
  else echo "An account exists already: sign in."; fi
  if [ "$SYSTEMD" = yes ]; then
    echo "Manage it: systemctl status|restart ${UNITS[*]}; logs: journalctl -u furrsight-web"
  else
    echo "Manage it: $SERVICE_SCRIPT start|stop|restart|status; output: $DATA/logs/furrsight-service.log"
  fi
  echo "Check it: $SERVICE_SCRIPT run doctor"
}

main() {
  check_arguments "$@"
  if [ "$UNINSTALL" = 1 ]; then uninstall; return 0; fi
  if [ -x "$PREFIX/.venv/bin/furrsight" ]; then
    say "upgrading the installation in $PREFIX (the data in $DATA and $ETC/furrsight.env are kept)"
    stop_services
  fi
  if [ "$SYSTEMD" = no ]; then
    say "not using systemd (it is not PID 1 here, or FURRSIGHT_SYSTEMD=no): everything else is installed," \
      "and FurrSight runs under 'furrsight up', started by $SERVICE_SCRIPT (start it again after a reboot)"
  fi
  system_packages
  user_and_folders
  code
  dependencies
  configuration
  services
  wait_healthy
  summary
}

# Everything above is only definitions: piped into bash, the whole script is read before it runs,
# so no command can swallow the rest of it from standard input.
main "$@"
