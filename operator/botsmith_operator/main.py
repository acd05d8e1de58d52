"""`botsmith-operator`: runs the handlers with a liveness endpoint and JSON logs."""

import argparse
import asyncio
import os
from collections.abc import Sequence

import kopf

DEFAULT_DRIFT_SECONDS = 300.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="botsmith-operator", description=__doc__)
    parser.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL"
    )
    parser.add_argument(
        "--drift-seconds",
        type=float,
        default=float(os.environ.get("BOTSMITH_OPERATOR_DRIFT_SECONDS", DEFAULT_DRIFT_SECONDS)),
        help="how often index sets are checked for drift "
        "(default $BOTSMITH_OPERATOR_DRIFT_SECONDS, else 300)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not args.namespace and not args.all_namespaces:
        parser.error("give --namespace NAME (repeatable) or --all-namespaces")
    # One process: the image's multiprocess metrics folder is not the operator's (its /tmp may be
    # an empty volume, where the folder does not exist), so its metrics stay in memory.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from botsmith_operator.handlers import register

    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON)
    registry = kopf.OperatorRegistry()
    register(registry, args.drift_seconds)
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=args.all_namespaces,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness,
        )
    )


if __name__ == "__main__":
    main()
