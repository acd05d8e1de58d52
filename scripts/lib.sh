# Shared paths for the project's scripts; sourced, not run.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${BOTSMITH_CACHE_DIR:-$ROOT/.cache}"
RUN_DIR="$ROOT/.run"
VENV="$ROOT/.venv"
FERRETDB_BIN="$CACHE_DIR/bin/ferretdb"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
