"""The ``botsmith`` command line."""

import argparse
import os
import sys
from collections.abc import Sequence

from app.core.config import ConfigurationError, load_settings

DEFAULT_APP = "app.main:create_app()"


def _serve(args: argparse.Namespace) -> int:
    # Validate here so that a wrong setting is one line, before gunicorn starts any worker.
    load_settings()
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:app.gunicorn_conf", args.app]
    os.execv(sys.executable, argv)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botsmith", description="BotSmith AI service commands")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API under gunicorn with uvicorn workers")
    serve.add_argument(
        "--app", default=DEFAULT_APP, help=f"ASGI application factory (default {DEFAULT_APP})"
    )
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
