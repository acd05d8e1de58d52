# The two commands: `make dev` runs the service, `make test` runs every check.
.PHONY: dev test install services stop lint format clean kind kind-test cluster-test bench-http bench-retrieval bench-ws bench-analytics bench-cpu bench-rag widget-hash

dev:  ## install, start FerretDB and Redis, run the API and an ingestion worker in the foreground
	bash scripts/dev.sh

test:  ## install, start the test services, run ruff, mypy and pytest, stop the services
	bash scripts/test.sh

install:  ## the virtualenv, Debian packages and the FerretDB binary, idempotently
	bash scripts/bootstrap.sh

services:  ## start the dev FerretDB and Redis in the background
	bash scripts/services.sh start dev

stop:  ## stop the dev FerretDB and Redis
	bash scripts/services.sh stop dev

lint:  ## ruff, mypy and the import contracts only
	.venv/bin/ruff check app operator tests k8s-tests
	.venv/bin/ruff format --check app operator tests k8s-tests
	.venv/bin/mypy
	.venv/bin/mypy --strict k8s-tests
	.venv/bin/lint-imports --no-cache

widget-hash:  ## write the widget's versioned path and integrity hash into the README
	.venv/bin/python scripts/widget_hash.py

format:
	.venv/bin/ruff check --fix app operator tests k8s-tests
	.venv/bin/ruff format app operator tests k8s-tests

clean:  ## remove local state (keeps the cached FerretDB binary)
	bash scripts/services.sh stop dev
	bash scripts/services.sh stop test
	rm -rf .run .venv .mypy_cache .ruff_cache .pytest_cache

cluster-test:  ## the cluster tier alone: images, a one-node cluster, the chart on real pods (root)
	bash scripts/bootstrap.sh test
	bash scripts/cluster/tier.sh

kind:  ## a kind cluster "botsmith", then skaffold dev with the kind profile (needs Docker, kind, kubectl, skaffold)
	kind get clusters | grep -qx botsmith || kind create cluster --name botsmith --wait 120s
	skaffold dev --profile kind

kind-test:  ## the full k8s-tests tier on the kind cluster: rollout, helm test, HPA under load
	bash scripts/bootstrap.sh test
	mkdir -p .run
	kind get kubeconfig --name botsmith > .run/kind.kubeconfig
	docker build -t botsmith:full-tier .
	kind load docker-image botsmith:full-tier --name botsmith
	BOTSMITH_KUBECONFIG=.run/kind.kubeconfig BOTSMITH_IMAGE=botsmith:full-tier \
		.venv/bin/pytest k8s-tests/test_full_cluster.py -rs

bench-http:  ## product vs baseline under wrk: throughput ratios, open loop, 1,000 connections, memory
	bash scripts/bootstrap.sh bench
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	.venv/bin/python bench/http_bench.py $(ARGS)

bench-retrieval:  ## ingestion throughput and retrieval latency at 1k, 10k and 100k chunks
	bash scripts/bootstrap.sh
	.venv/bin/python bench/retrieval_bench.py $(ARGS)

bench-ws:  ## 10,000 held WebSockets (server RSS) and broadcast latency to 1,000 subscribers
	bash scripts/bootstrap.sh
	.venv/bin/python bench/ws_bench.py $(ARGS)

bench-cpu:  ## CPU time per request of the hot routes, alternating between source trees (ARGS="/tmp/before .")
	bash scripts/bootstrap.sh
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	.venv/bin/python bench/cpu_per_request.py $(ARGS)

bench-analytics:  ## analytics p95, cold and cached, for a bot with 100,000 messages over 30 days (ARGS="--messages 1000000")
	bash scripts/bootstrap.sh
	.venv/bin/python bench/analytics_bench.py $(ARGS)

bench-rag:  ## answer quality on ten PostgreSQL manual pages: recall, answered, "I don't know", the threshold curve
	bash scripts/bootstrap.sh
	[ -d /usr/share/doc/postgresql-doc-15/html ] || (apt-get update -qq && apt-get install -y -qq postgresql-doc-15)
	.venv/bin/python bench/rag_bench.py $(ARGS)
