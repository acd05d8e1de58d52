#!/usr/bin/env bash
# The test command: installs what is needed, starts the test services, runs the linters, the type
# checker, the import contracts and pytest, stops what it started, then runs the cluster tier
# (scripts/cluster/tier.sh: the chart on a one-node cluster of real pods). Extra arguments go to
# pytest and leave the cluster tier out; BOTSMITH_CLUSTER_TIER=0 leaves it out too.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash scripts/bootstrap.sh test
scripts/services.sh start test
trap 'scripts/services.sh stop test' EXIT
set -a
# shellcheck disable=SC1091
source .run/test/env
set +a

log "ruff"
.venv/bin/ruff check app operator tests k8s-tests
.venv/bin/ruff format --check app operator tests k8s-tests
log "mypy (strict)"
.venv/bin/mypy
.venv/bin/mypy --strict k8s-tests
log "import contracts (pyproject.toml, docs/architecture.md)"
.venv/bin/lint-imports --no-cache
log "pytest"
.venv/bin/pytest --ignore=k8s-tests/test_full_cluster.py "$@"
scripts/services.sh stop test
trap - EXIT

if [ $# -eq 0 ] && [ "${BOTSMITH_CLUSTER_TIER:-1}" != 0 ]; then
  log "cluster tier"
  bash scripts/cluster/tier.sh
fi
