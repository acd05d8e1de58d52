#!/usr/bin/env bash
# Starts and stops the local services (FerretDB and Redis) on loopback, idempotently.
#
#   scripts/services.sh start [INSTANCE]   start both; prints the environment to use them
#   scripts/services.sh stop [INSTANCE]    stop both
#   scripts/services.sh status [INSTANCE]
#
# INSTANCE is "dev" (FerretDB 27027, Redis 6389), "test" (FerretDB 27127, Redis 6489) or "bench"
# (FerretDB 27227, Redis 6589); test and bench data is wiped at every start. The ports can be overridden with FERRETDB_PORT and REDIS_PORT.
# State (pid files, logs, data, an env file with a generated JWT_SECRET) lives in .run/INSTANCE/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

action="${1:-}"
instance="${2:-dev}"
case "$instance" in
  dev) default_mongo=27027 default_redis=6389 ;;
  test) default_mongo=27127 default_redis=6489 ;;
  bench) default_mongo=27227 default_redis=6589 ;;
  *) die "unknown instance '$instance' (dev, test or bench)" ;;
esac
mongo_port="${FERRETDB_PORT:-$default_mongo}"
redis_port="${REDIS_PORT:-$default_redis}"
dir="$RUN_DIR/$instance"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() {
  local port="$1" name="$2" deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "$name did not open port $port within 30 s (see $dir/$name.log)"
    sleep 0.2
  done
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_ferretdb() {
  local pidfile="$dir/ferretdb.pid"
  running "$pidfile" && return
  port_taken "$mongo_port" && die "port $mongo_port is in use by another process; set FERRETDB_PORT"
  [ -x "$FERRETDB_BIN" ] || die "FerretDB is not built; run scripts/bootstrap.sh"
  nohup "$FERRETDB_BIN" -listen-addr "127.0.0.1:$mongo_port" -data-dir "$dir/ferretdb-data" \
    >"$dir/ferretdb.log" 2>&1 &
  echo $! >"$pidfile"
  wait_port "$mongo_port" ferretdb
}

start_redis() {
  local pidfile="$dir/redis.pid"
  running "$pidfile" && return
  port_taken "$redis_port" && die "port $redis_port is in use by another process; set REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir" --save "" --appendonly no \
    --daemonize yes --pidfile "$pidfile" --logfile "$dir/redis.log" >/dev/null
  wait_port "$redis_port" redis
}

stop_one() {
  local name="$1" pidfile="$dir/$1.pid" pid
  running "$pidfile" || { rm -f "$pidfile"; return; }
  pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  log "stopped $name"
}

# The token signing secret of this instance: random, made once, kept so sessions survive restarts.
jwt_secret() {
  local file="$dir/jwt-secret"
  if [ ! -s "$file" ]; then
    (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

write_env() {
  rm -f "$dir/env"
  (umask 077 && cat >"$dir/env" <<ENV
MONGO_URL=mongodb://127.0.0.1:$mongo_port/
REDIS_URL=redis://127.0.0.1:$redis_port/0
FERRETDB_BIN=$FERRETDB_BIN
JWT_SECRET=$(jwt_secret)
ENV
  )
}

case "$action" in
  start)
    mkdir -p "$dir"
    if [ "$instance" != dev ] && ! running "$dir/ferretdb.pid"; then rm -rf "$dir/ferretdb-data"; fi
    start_ferretdb
    start_redis
    write_env
    log "FerretDB on 127.0.0.1:$mongo_port, Redis on 127.0.0.1:$redis_port (env in $dir/env)"
    ;;
  stop)
    stop_one ferretdb
    stop_one redis
    ;;
  status)
    for name in ferretdb redis; do
      if running "$dir/$name.pid"; then echo "$name: running (pid $(cat "$dir/$name.pid"))"; else echo "$name: stopped"; fi
    done
    ;;
  *) die "usage: $0 start|stop|status [dev|test|bench]" ;;
esac
