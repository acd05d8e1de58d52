#!/usr/bin/env bash
# The dev command: installs what is needed, starts FerretDB and Redis, and runs the API in the
# foreground under gunicorn. Ctrl-C stops the API; `make stop` stops FerretDB and Redis.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash scripts/bootstrap.sh
scripts/services.sh start dev
set -a
# shellcheck disable=SC1091
source .run/dev/env
set +a
export UVICORN_WORKERS="${UVICORN_WORKERS:-2}"
export PORT="${PORT:-8000}"

cat >&2 <<MSG
==> BotSmith API on http://127.0.0.1:$PORT  (docs: /docs, health: /api/health, metrics: /metrics)
    MongoDB wire (FerretDB): $MONGO_URL   Redis: $REDIS_URL
    Ctrl-C stops the API; 'make stop' stops FerretDB and Redis.
MSG
exec .venv/bin/botsmith serve
