"""The ``botsmith`` command line."""

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from app.core.config import ConfigurationError, describe_validation_error, load_settings

DEFAULT_APP = "app.main:create_app()"


class CommandError(Exception):
    """A command cannot do what was asked; the message says why, in one line."""


def _serve(args: argparse.Namespace) -> int:
    # Validate here so that a wrong setting is one line, before gunicorn starts any worker.
    load_settings()
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:app.gunicorn_conf", args.app]
    os.execv(sys.executable, argv)


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n") or None
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise CommandError(f"the variable {args.password_env} is not set")
        return value
    if sys.stdin.isatty():
        return (
            getpass.getpass("Password (empty with --promote-existing: keep the current one): ")
            or None
        )
    return None


def _create_admin_command(args: argparse.Namespace) -> int:
    # A one-off process: its metrics go nowhere, and the multiprocess folder may not exist.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from app.users.commands import AccountExistsError, AccountMissingError, create_admin
    from app.users.schemas import AdminAccount

    try:
        account = AdminAccount(email=args.email, password=_read_password(args), name=args.name)
        print(asyncio.run(create_admin(account, promote_existing=args.promote_existing)))
    except ValidationError as error:
        raise CommandError(describe_validation_error(error)) from None
    except (AccountMissingError, AccountExistsError) as error:
        raise CommandError(str(error)) from None
    return 0


def _indexes_command(args: argparse.Namespace) -> int:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from app.core.index_commands import run_indexes

    report, complete = asyncio.run(
        run_indexes(apply=args.action == "apply", allow_rebuild=args.allow_rebuild)
    )
    print(report)
    return 0 if complete or not args.strict else 1


def _worker_command(args: argparse.Namespace) -> int:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from app.core.logging import setup_logging
    from app.sources.worker import run_worker

    settings = load_settings()
    setup_logging(settings)
    asyncio.run(run_worker(settings))
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botsmith", description="BotSmith AI service commands")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API under gunicorn with uvicorn workers")
    serve.add_argument(
        "--app", default=DEFAULT_APP, help=f"ASGI application factory (default {DEFAULT_APP})"
    )
    serve.set_defaults(handler=_serve)

    admin = commands.add_parser(
        "create-admin", help="create an administrator, or promote an existing account"
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--name")
    admin.add_argument(
        "--promote-existing",
        action="store_true",
        help="make an existing account an administrator (its sessions end)",
    )
    source = admin.add_mutually_exclusive_group()
    source.add_argument("--password-env", metavar="VAR", help="read the password from VAR")
    source.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    admin.set_defaults(handler=_create_admin_command)

    worker = commands.add_parser("worker", help="process knowledge ingestion jobs from Redis")
    worker.set_defaults(handler=_worker_command)

    indexes = commands.add_parser(
        "indexes", help="compare the index catalogue with the database, or apply it"
    )
    indexes.add_argument("action", choices=["plan", "apply"])
    indexes.add_argument(
        "--allow-rebuild", action="store_true", help="rebuild indexes whose definition changed"
    )
    indexes.add_argument(
        "--strict", action="store_true", help="exit 1 if an index failed or is mismatched"
    )
    indexes.set_defaults(handler=_indexes_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except (ConfigurationError, CommandError) as error:
        print(f"botsmith: {error}" if isinstance(error, CommandError) else error, file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
