#!/usr/bin/env bash
# One-stop set-up and run script (idempotent). See README.md.
#   bash dev.sh run  [iotwatch args...]   set up, then run iotwatch (default: the TUI on the bundled demo)
#   bash dev.sh test [pytest args...]     set up, then run the test suite
#   bash dev.sh setup                     set up only
set -euo pipefail
cd "$(dirname "$0")"
VENV=${IOTWATCH_VENV:-.venv}
PY=${PYTHON:-python3}

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 99; fi; }

apt_install() {
  # Debian/Ubuntu packages: tshark (+dumpcap), tmux for the terminal test, the lab's real tools.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "iotwatch setup: please install: ${missing[*]} (no apt-get on this machine)" >&2; return 3
  fi
  echo "iotwatch setup: installing ${missing[*]} via apt-get" >&2
  echo "wireshark-common wireshark-common/install-setuid boolean true" | need_root debconf-set-selections || true
  if ! need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
    need_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null || {
      rc=$?; [ $rc -eq 99 ] && echo "iotwatch setup: need root or sudo to install: ${missing[*]}" >&2; return 3; }
  fi
}

pip_quiet() {
  # pip's output goes to a log; shown only when pip fails.
  local log="$VENV/pip.log"
  echo "iotwatch setup: pip $*" >&2
  if ! "$VENV/bin/python" -m pip "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -20 >&2
    echo "iotwatch setup: pip failed (full log: $log)" >&2
    return 1
  fi
}

build_tools() {
  # the inference kernel (detector/_mlp.c) is compiled at install time: a C compiler and Python.h.
  # Not fatal: without them the install still works and inference runs the numpy fallback.
  local inc
  command -v gcc >/dev/null || command -v cc >/dev/null || apt_install gcc || true
  inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$inc/Python.h" ] || apt_install python3-dev || true
}

setup() {
  apt_install tshark tmux rsyslog   # rsyslog: tests/test_shipping.py runs the shipping recipe
  # a non-root member of the wireshark group: the tests of the README's recommended capture set-up (kill -9 of a
  # non-root capture, the fuzz harness's non-root live cases) run iotwatch as this user
  if [ "$(id -u)" -eq 0 ] && ! id iwcap >/dev/null 2>&1; then
    getent group wireshark >/dev/null || groupadd --system wireshark
    useradd --system --no-create-home --shell /usr/sbin/nologin -G wireshark iwcap || true
  fi
  build_tools
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  # torch first, pinned: this machine has the 2.13.0 CPU wheel; otherwise pip pulls a multi-GB CUDA build.
  "$VENV/bin/python" -c "import torch" 2>/dev/null || \
    pip_quiet install torch==2.13.0 ${IOTWATCH_TORCH_INDEX:+--extra-index-url "$IOTWATCH_TORCH_INDEX"}
  # (re)install when the packaging or the C kernel changed, or the built kernel is missing
  local stamp="$VENV/.iotwatch-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ detector/_mlp.c -nt "$stamp" ] || \
     [ detector/_tables.c -nt "$stamp" ] || \
     ! "$VENV/bin/python" -c "import iotwatch.detector._mlp, iotwatch.detector._tables" 2>/dev/null; then
    pip_quiet install -e ".[test]" && touch "$stamp"
    "$VENV/bin/python" -c "import iotwatch.detector._mlp" 2>/dev/null || \
      echo "iotwatch setup: warning: the C inference kernel (detector/_mlp.c) did not build, inference" \
           "runs the slower numpy fallback (install gcc and python3-dev; build log: $VENV/pip.log)" >&2
    "$VENV/bin/python" -c "import iotwatch.detector._tables" 2>/dev/null || \
      echo "iotwatch setup: warning: the feature-table kernel (detector/_tables.c) did not build, feature" \
           "extraction runs its slower numpy path (same values; install gcc and python3-dev)" >&2
  fi
  if [ "${IOTWATCH_LAB_TOOLS:-1}" = 1 ]; then
    # the attack lab's real tools (nmap, hping3, hydra, ...): installed without leaving host daemons running
    need_root "$VENV/bin/iotwatch" lab setup >"$VENV/lab-setup.log" 2>&1 || {
      tail -5 "$VENV/lab-setup.log" >&2
      echo "iotwatch setup: lab tools not installed (lab tests need them; IOTWATCH_LAB_TOOLS=0 skips this step)" >&2; }
  fi
}

cmd=${1:-run}; shift || true
case "$cmd" in
  setup) setup ;;
  run)   setup; exec "$VENV/bin/iotwatch" "$@" ;;
  test)  setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash dev.sh run|test|setup [args]" >&2; exit 2 ;;
esac
