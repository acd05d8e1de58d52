#!/usr/bin/env bash
# The cluster tier of the test command: builds the images, starts the one-node cluster, runs
# k8s-tests/test_full_cluster.py against it (every test must run: a skip is a failure here), and
# tears down what it started, whatever happened. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

started=$SECONDS
bash scripts/cluster/down.sh  # what an interrupted run may have left
bash scripts/cluster/images.sh
log "images ready in $((SECONDS - started)) s"
trap 'bash scripts/cluster/down.sh' EXIT
up_started=$SECONDS
kubeconfig=$(bash scripts/cluster/up.sh | tail -n 1)
log "cluster up in $((SECONDS - up_started)) s"
BOTSMITH_KUBECONFIG="$kubeconfig" BOTSMITH_IMAGE=botsmith:dev BOTSMITH_REQUIRE_CLUSTER=1 \
  BOTSMITH_VALUES="$ROOT/k8s-tests/local-cluster-values.yaml" \
  .venv/bin/pytest -p no:cacheprovider -rA k8s-tests/test_full_cluster.py "$@"
log "cluster tier done in $((SECONDS - started)) s"
