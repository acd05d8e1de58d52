"""The ``botsmith`` command line."""

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from app.core.config import ConfigurationError, describe_validation_error, load_settings
from app.evaluation.scoring import THRESHOLDS

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
    from app.housekeeping import housekeeping_rounds
    from app.sources.worker import run_worker

    settings = load_settings()
    setup_logging(settings)
    asyncio.run(run_worker(settings, housekeeping_rounds))
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _eval_command(args: argparse.Namespace) -> int:
    from app.evaluation.commands import EvalCommandError, EvalOptions, run_eval

    token = args.token or os.environ.get("BOTSMITH_TOKEN")
    if not token:
        raise CommandError("give an access token with --token or BOTSMITH_TOKEN")
    minimums = {
        metric: getattr(args, option)
        for option, metric in THRESHOLDS.items()
        if getattr(args, option) is not None
    }
    options = EvalOptions(
        file=args.file,
        url=args.url,
        chatbot_id=args.chatbot,
        token=token,
        minimums=minimums,
        timeout=args.timeout,
        as_json=args.json,
        label=args.label,
    )
    try:
        failures = run_eval(options, sys.stdout)
    except EvalCommandError as error:
        raise CommandError(str(error)) from None
    for failure in failures:
        print(f"botsmith: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _analytics_command(args: argparse.Namespace) -> int:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from app.analytics.commands import run_backfill, run_check

    if args.action == "backfill":
        print(asyncio.run(run_backfill(args.chatbot)))
        return 0
    report, agree = asyncio.run(run_check(args.chatbot))
    print(report, file=sys.stdout if agree else sys.stderr)
    return 0 if agree else 1


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

    analytics = commands.add_parser(
        "analytics",
        help="rebuild the hourly analytics rollups from the raw messages, or check them",
        description="backfill: replace the rollups with a recount of the raw messages. "
        "check: compare them; exit 1 with the differences when they disagree.",
    )
    analytics.add_argument("action", choices=["backfill", "check"])
    analytics.add_argument("--chatbot", metavar="ID", help="one chatbot (default: every chatbot)")
    analytics.set_defaults(handler=_analytics_command)

    evaluate = commands.add_parser(
        "eval",
        help="run a file of test cases against a chatbot and check the metrics",
        description="Exit status: 0 when every metric reaches its minimum, 1 when one does not, "
        "2 on a usage, file or HTTP error (with the server's problem detail) or a timeout.",
    )
    evaluate.add_argument(
        "file", type=Path, help='JSON: {"cases": [...]} or a list of cases, as the API takes them'
    )
    evaluate.add_argument("--url", required=True, help="the API, such as http://localhost:8000")
    evaluate.add_argument("--chatbot", required=True, metavar="ID", help="the chatbot's id")
    evaluate.add_argument(
        "--token", help="the owner's access token (default: the variable BOTSMITH_TOKEN)"
    )
    for option, metric in THRESHOLDS.items():
        evaluate.add_argument(
            f"--{option.replace('_', '-')}",
            type=_fraction,
            metavar="X",
            help=f"exit 1 when {metric} is under X (0..1)",
        )
    evaluate.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="give up waiting for the run after S seconds (default 600)",
    )
    evaluate.add_argument("--label", help="a name for the run, such as a commit")
    evaluate.add_argument("--json", action="store_true", help="print the summary as JSON")
    evaluate.set_defaults(handler=_eval_command)
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
