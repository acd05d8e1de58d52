#!/usr/bin/env bash
# The dev command: installs what is needed, starts FerretDB and Redis, and runs the whole product
# in the foreground: the API under gunicorn and an ingestion worker (started again if it dies).
# Ctrl-C stops the API and the worker; `make stop` stops FerretDB and Redis.
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
export HOST="${HOST:-127.0.0.1}"  # loopback: set HOST=0.0.0.0 to reach it from elsewhere
export WORKER_METRICS_PORT="${WORKER_METRICS_PORT:-0}"
mkdir -p .run/dev

# The worker, restarted with a short pause whenever it exits; its log goes to .run/dev/worker.log.
supervise_worker() {
  trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null; exit 0' TERM INT
  while true; do
    .venv/bin/botsmith worker >>.run/dev/worker.log 2>&1 &
    worker=$!
    wait "$worker" && status=0 || status=$?
    log "ingestion worker exited ($status); starting it again in 2 s (log: .run/dev/worker.log)"
    sleep 2
  done
}

supervise_worker &
supervisor=$!
.venv/bin/botsmith serve &
api=$!
stop() {
  kill -TERM "$api" "$supervisor" 2>/dev/null || true
  wait "$api" "$supervisor" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

cat >&2 <<MSG
==> BotSmith API on http://127.0.0.1:$PORT
    API docs:     http://127.0.0.1:$PORT/docs      health: /api/health, /readyz   metrics: /metrics
    widget demo:  http://127.0.0.1:$PORT/widget/demo?chatbot_id=<a public bot's id>
    first steps:  README.md, "First five minutes"
    ingestion worker running (log: .run/dev/worker.log)
    MongoDB wire (FerretDB): $MONGO_URL   Redis: $REDIS_URL
    Ctrl-C stops the API and the worker; 'make stop' stops FerretDB and Redis.
MSG
# The product runs while the API does; if the API exits on its own, so does this command.
wait "$api"
