"""The `chatkit-backend` command: serve, migrate, token, purge."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
from datetime import timedelta

from .config import BUILT_IN_AGENTS, ConfigError, Settings, load_settings


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"chatkit-backend: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .auth import AUTH_VARIABLES, is_loopback_host

    settings = _settings_or_exit()
    if not settings.auth_configured and not is_loopback_host(args.host):
        # Local mode trusts every caller as the one local user: fine on loopback only.
        print(
            f"chatkit-backend: refusing to serve on {args.host} without authentication: "
            f"set {AUTH_VARIABLES} (or bind to 127.0.0.1)",
            file=sys.stderr,
        )
        return 2
    from .agent.catalogue import build_catalogue
    from .agent.models import missing_key
    from .telemetry import tracing_unavailable

    problems = [tracing_unavailable(settings)]
    problems += [missing_key(entry.choice) for entry in build_catalogue(settings).entries]
    for problem in problems:
        if problem:
            print(f"chatkit-backend: invalid configuration: {problem}", file=sys.stderr)
            return 2
    if settings.agent not in BUILT_IN_AGENTS:
        # Imports the Agents SDK (seconds), so only for an operator's own agent.
        from .agent.registry import agent_problem

        if problem := agent_problem(settings):
            print(f"chatkit-backend: {problem}", file=sys.stderr)
            return 2
    metrics_dir = prepare_metrics_dir(args.workers)
    try:
        uvicorn.run(
            "chatkit_backend.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=settings.log_level.lower(),
            # Give streams time to end cleanly on shutdown; partial replies are kept.
            timeout_graceful_shutdown=15,
        )
    finally:
        # The supervisor returns here after SIGTERM too, once its workers have exited.
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


# prometheus_client reads this when it is imported (metrics.py); not imported from there,
# because the supervisor need not load it.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(workers: int) -> str | None:
    """Give several workers one fresh directory to share their metrics through.

    Returns the directory to remove on exit, or None when there is nothing of ours to
    remove: one worker keeps its metrics in memory (it runs in this process, where
    prometheus_client may be imported already), and an operator's directory is theirs.
    """
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        return None
    # Set before any worker starts: each is a fresh interpreter that imports metrics.py.
    os.environ[MULTIPROC_ENV] = path = tempfile.mkdtemp(prefix="chatkit-metrics-")
    return path


def cmd_purge(args: argparse.Namespace) -> int:
    from . import db
    from .attachments.blobs import open_blobs
    from .maintenance import purge_threads, purge_unsent_attachments

    settings = _settings_or_exit()

    async def run() -> tuple[int, int]:
        engine = db.engine_for(settings)
        try:
            await db.migrate_for(settings, engine)
            blobs = open_blobs(settings.attachments_url, engine, settings.attachments_s3_endpoint)
            threads = await purge_threads(engine, timedelta(seconds=args.older_than), blobs)
            return threads, await purge_unsent_attachments(engine, blobs)
        finally:
            await engine.dispose()

    count, unsent = asyncio.run(run())
    print(
        f"purged {count} thread{'s' if count != 1 else ''} with their items, "
        "attachments, feedback and usage"
    )
    print(
        f"purged {unsent} attachment{'s' if unsent != 1 else ''} "
        "never sent in a message within a day"
    )
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    from . import db

    settings = _settings_or_exit()

    async def run() -> None:
        engine = db.engine_for(settings)
        try:
            await db.migrate_for(settings, engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("database is up to date")
    return 0


_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `1h` or `7d`."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip().lower())
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30m, 1h or 7d")
    return int(match[1]) * _TTL_UNITS[match[2] or "s"]


def cmd_token(args: argparse.Namespace) -> int:
    from .auth import MAX_USER_ID_LENGTH, issue_token

    settings = _settings_or_exit()
    if settings.auth_jwks_url:
        print(
            "chatkit-backend: AUTH_JWKS_URL is set, so the server accepts only tokens signed "
            "by those keys; get a token from the issuer instead",
            file=sys.stderr,
        )
        return 2
    if not settings.jwt_secret:
        print(
            "chatkit-backend: no secret to sign with: set BETTER_AUTH_SECRET or AUTH_SECRET",
            file=sys.stderr,
        )
        return 2
    user = args.user.strip()
    if not user or len(user) > MAX_USER_ID_LENGTH:
        print(
            f"chatkit-backend: --user must be 1 to {MAX_USER_ID_LENGTH} characters",
            file=sys.stderr,
        )
        return 2
    print(issue_token(settings, user, args.ttl))
    return 0


DESCRIPTION = (
    "Self-hosted backend for OpenAI's ChatKit: serve the chat API, migrate its database, "
    "sign bearer tokens, purge old threads."
)
EPILOG = (
    "Settings come from the environment and from a .env file in the working directory: "
    "see .env.example for every one with its default."
)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatkit-backend", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. {details}",
            epilog=EPILOG,
        )

    serve = command(
        "serve",
        "run the HTTP server",
        "Pending migrations are applied at start, once, however many workers or instances "
        "start together. SIGTERM lets streams finish for up to 15 s.",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; any but a loopback one needs auth configured "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="TCP port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes, up to the machine's cores (default: %(default)s)",
    )
    serve.set_defaults(func=cmd_serve)
    migrate = command(
        "migrate",
        "apply pending database migrations and exit",
        "Optional: serve migrates too, under the same lock.",
    )
    migrate.set_defaults(func=cmd_migrate)
    token = command(
        "token",
        "print a bearer token signed with the shared secret",
        "Signs HS256 with BETTER_AUTH_SECRET or AUTH_SECRET; not for AUTH_JWKS_URL set-ups.",
    )
    token.add_argument("--user", required=True, help="the user id, the token's sub (required)")
    token.add_argument(
        "--ttl",
        type=parse_ttl,
        default="1h",
        help="how long the token is valid: 90s, 15m, 1h, 7d (default: %(default)s)",
    )
    token.set_defaults(func=cmd_token)
    purge = command(
        "purge",
        "delete threads with no activity for a while",
        "Their items, attachments, feedback and usage rows go with them.",
    )
    purge.add_argument(
        "--older-than",
        type=parse_ttl,
        required=True,
        help="idle time after which a thread goes: 90d, 12h, 30m (required)",
    )
    purge.set_defaults(func=cmd_purge)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
