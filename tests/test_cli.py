"""The `chatkit-backend` command as a user runs it: serve, migrate, configuration errors."""

from __future__ import annotations

import argparse
import asyncio
from asyncio.subprocess import PIPE
from pathlib import Path

import asyncpg

from chatkit_backend import db
from chatkit_backend.cli import build_parser

from .live import ChatKitClient, assistant_text
from .processes import COMMAND, clean_env, run_cli, served


async def test_threads_survive_a_server_restart(database_url: str, tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=database_url, MODEL="offline")
    with served(env, tmp_path) as url:
        client = ChatKitClient(url)
        thread_id, events = await client.create_thread("hello, do you remember me?")
        assert assistant_text(events)
        await client.aclose()
    with served(env, tmp_path) as url:
        client = ChatKitClient(url)
        listed = await client.call("threads.list", limit=10)
        assert [t["id"] for t in listed["data"]] == [thread_id]
        items = await client.items(thread_id)
        assert [i["type"] for i in items] == ["user_message", "assistant_message"]
        assert items[0]["content"][0]["text"] == "hello, do you remember me?"
        await client.aclose()


async def test_the_default_is_a_sqlite_file_under_data(tmp_path: Path) -> None:
    with served(clean_env(), tmp_path) as url:
        client = ChatKitClient(url)
        _, events = await client.create_thread("hello")
        assert "offline" in assistant_text(events)
        await client.aclose()
    assert (tmp_path / "data" / "chatkit.db").is_file()


def test_an_invalid_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = run_cli("serve", env=clean_env(HISTORY_ITEMS="lots"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "HISTORY_ITEMS" in lines[0]

    result = run_cli("migrate", env=clean_env(DATABASE_URL="mysql://x/y"), cwd=tmp_path)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def file_names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def test_concurrent_migrations_apply_once(database_url: str, tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=database_url)
    procs = [
        await asyncio.create_subprocess_exec(
            COMMAND, "migrate", env=env, cwd=tmp_path, stdout=PIPE, stderr=PIPE
        )
        for _ in range(3)
    ]
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()
        assert b"up to date" in out
    if database_url.startswith("postgresql"):
        conn = await asyncpg.connect(database_url)
        try:
            versions = await conn.fetch("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()
        assert len(versions) == 1
    else:
        # The lock that serialised them is not left beside the database.
        assert "chatkit.db" in file_names(tmp_path)
        assert "chatkit.db.migrate.lock" not in file_names(tmp_path)


async def test_the_sqlite_migration_lock_excludes_and_leaves_no_file(tmp_path: Path) -> None:
    database = tmp_path / "chatkit.db"
    inside = 0
    entered = 0

    async def migrate_repeatedly() -> None:
        nonlocal inside, entered
        for _ in range(25):
            async with db._file_lock(database):
                inside += 1
                entered += 1
                assert inside == 1, "two holders of the migration lock at once"
                await asyncio.sleep(0.001)  # let the others reach the lock meanwhile
                inside -= 1

    await asyncio.gather(*(migrate_repeatedly() for _ in range(4)))
    assert entered == 100
    assert file_names(tmp_path) == []


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (choices,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(choices.choices)


def test_every_option_says_what_it_does_and_its_default() -> None:
    commands = subcommands()
    assert set(commands) == {"serve", "migrate", "token", "purge"}
    for name, command in commands.items():
        assert command.description, name
        text = command.format_help()
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.required:
                assert "(required)" in action.help, action.option_strings
            else:
                assert "(default: %(default)s)" in action.help, action.option_strings
                assert f"(default: {action.default})" in " ".join(text.split())


def test_help_reads_cleanly_from_the_command_line(tmp_path: Path) -> None:
    top = run_cli("--help", env=clean_env(), cwd=tmp_path)
    assert top.returncode == 0
    assert "`" not in top.stdout
    assert "ChatKit" in top.stdout and ".env.example" in top.stdout
    for command in ("serve", "migrate", "token", "purge"):
        assert command in top.stdout
    serve = run_cli("serve", "--help", env=clean_env(), cwd=tmp_path)
    assert serve.returncode == 0
    flat = " ".join(serve.stdout.split())
    for default in ("(default: 127.0.0.1)", "(default: 8000)", "(default: 1)"):
        assert default in flat
