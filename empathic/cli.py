"""The `empathic` command: serve, manage API keys, and be a phone in a terminal."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import httpx
import typer
from rich.console import Console

from empathic.engine.project import EXAMPLES, ProjectError

if TYPE_CHECKING:  # imported late where used: the command starts fast
    from sqlalchemy.ext.asyncio import AsyncConnection

    from empathic.store.users import User

app = typer.Typer(help="Empathic: automated, intelligent, two-way business texting.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
flows_app = typer.Typer(help="Check and test flow files.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")
console = Console()
T = TypeVar("T")

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="EMPATHIC_DATA_DIR", help="Where the SQLite database lives."),
]


@app.command()
def serve(
    data_dir: DataDir = Path("./empathic-data"),
    port: Annotated[int, typer.Option(envvar="EMPATHIC_PORT")] = 8000,
    host: Annotated[str, typer.Option(envvar="EMPATHIC_HOST")] = "127.0.0.1",
    project: Annotated[Path, typer.Option(envvar="EMPATHIC_PROJECT", help="Project folder (empathic.toml, templates/).")] = EXAMPLES,
    log_level: Annotated[str, typer.Option(envvar="EMPATHIC_LOG_LEVEL")] = "info",
    role: Annotated[str, typer.Option(
        envvar="EMPATHIC_ROLE",
        help="all: API and workers in one process; api: the HTTP API only; worker: channels, "
             "dispatchers, timers and webhooks only (no HTTP). Workers share duties by lease.",
    )] = "all",
) -> None:
    """Run the API, the workers and the built-in carrier simulator in one process (or one role)."""
    import uvicorn

    from empathic.api.app import create_app
    from empathic.engine.runtime import ROLES, Runtime, Settings

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if role not in ROLES:
        console.print(f"[red]--role must be one of {', '.join(ROLES)}, not {role!r}[/red]")
        raise typer.Exit(2)
    try:
        runtime = Runtime(Settings(data_dir=data_dir, project_dir=project, role=role))
    except ProjectError as exc:
        console.print(f"[red]Project error:[/red] {exc}")
        raise typer.Exit(2) from None
    except ValueError as exc:  # a setting from the environment that cannot be used (it says which)
        console.print(f"[red]Settings error:[/red] {exc}")
        raise typer.Exit(2) from None
    where = runtime.settings.database_url or str(data_dir / "empathic.sqlite3")
    if role == "worker":
        console.print(f"Empathic worker {runtime.owner} (data: {where}, project: {project})")
        try:
            import uvloop  # what uvicorn runs the API on, when installed (uvicorn[standard])
        except ImportError:
            asyncio.run(_work(runtime))
        else:
            uvloop.run(_work(runtime))
        return
    console.print(f"Empathic {'API ' if role == 'api' else ''}on http://{host}:{port} (data: {where}, project: {project})")
    config = uvicorn.Config(
        create_app(runtime), host=host, port=port, log_level=log_level.lower(), access_log=False,
        timeout_graceful_shutdown=3,  # open pages' event streams (/live) never end by themselves
    )
    uvicorn.Server(config).run()


async def _work(runtime: object) -> None:
    """A worker process: start, then stop cleanly on SIGTERM or SIGINT (handing its leases over)."""
    import signal

    from empathic.engine.runtime import Runtime

    assert isinstance(runtime, Runtime)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await runtime.start()
    try:
        await stopping.wait()
    finally:
        await runtime.stop()


@keys_app.command("create")
def keys_create(
    data_dir: DataDir = Path("./empathic-data"),
    name: Annotated[str, typer.Option(help="A label to tell keys apart.")] = "cli",
) -> None:
    """Create an API key for the default workspace and print it (it is shown only once)."""
    from empathic.engine.runtime import DEFAULT_WORKSPACE, Settings
    from empathic.store import keys
    from empathic.store.db import Database

    async def create() -> str:
        db = Database(Settings(data_dir=data_dir).resolved_database_url())
        try:
            await db.migrate()
            key = keys.new_key()
            from empathic.core.clock import SystemClock

            now = SystemClock().now()
            async with db.transaction() as conn:
                await keys.ensure_workspace(conn, DEFAULT_WORKSPACE, "Default workspace", now)
                await keys.add_key(conn, DEFAULT_WORKSPACE, key, name, now)
            return key
        finally:
            await db.close()

    print(asyncio.run(create()))


@app.command()
def phone(
    number: Annotated[str, typer.Argument(help="The virtual phone's number, e.g. +14155550100.")],
    url: Annotated[str, typer.Option(envvar="EMPATHIC_URL")] = "http://127.0.0.1:8000",
    key: Annotated[str | None, typer.Option(envvar="EMPATHIC_API_KEY", help="API key (or EMPATHIC_API_KEY).")] = None,
    interval: float = 1.0,
) -> None:
    """An interactive phone in the terminal: shows texts it receives, sends what you type."""
    if not key:
        console.print("[red]Give an API key with --key or EMPATHIC_API_KEY.[/red]")
        raise typer.Exit(2)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    path = f"/v1/simulator/phones/{number}/messages"
    try:
        first = client.get(path)
    except httpx.HTTPError as exc:
        console.print(f"[red]Cannot reach {url}: {exc}[/red]")
        raise typer.Exit(1) from None
    if first.status_code != 200:
        console.print(f"[red]{first.json().get('detail', first.text)}[/red]")
        raise typer.Exit(1)
    shown = len(first.json()["messages"])
    console.print(f"📱 {first.json()['phone']}: type a text and press Enter; Ctrl-D to quit.")
    stop = threading.Event()

    def poll() -> None:
        nonlocal shown
        while not stop.is_set():
            try:
                texts = client.get(path, params={"limit": 1000}).json()["messages"]
            except (httpx.HTTPError, KeyError, ValueError):
                time.sleep(interval)
                continue
            for text in texts[shown:]:
                if text["direction"] == "received":
                    console.print(f"[bold cyan]{text['peer']}[/bold cyan]: {text['body']}")
            shown = len(texts)
            stop.wait(interval)

    threading.Thread(target=poll, daemon=True).start()
    try:
        for line in sys.stdin:
            body = line.rstrip("\n")
            if body.strip():
                response = client.post(path, json={"body": body})
                if response.status_code >= 400:
                    console.print(f"[red]{response.json().get('detail')}[/red]")
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()


FlowFiles = Annotated[list[Path], typer.Argument(help="Flow files (flows/<name>.yaml) or their transcripts.", exists=True, dir_okay=False)]
ProjectOption = Annotated[Path | None, typer.Option("--project", help="The project folder (default: the parent of the files' flows/ folder).")]


@flows_app.command("check")
def flows_check(files: FlowFiles, project: ProjectOption = None) -> None:
    """Check flow files: the format, and everything they refer to in their project."""
    from empathic.engine.project import flow_files, load_project
    from empathic.flows import loader

    problems: list[loader.Problem] = []
    checked: dict[Path, list[Path]] = {}
    for path in files:
        root = project or (path.resolve().parent.parent if path.resolve().parent.name == "flows" else None)
        checked.setdefault(root or Path(), []).append(path)
    for root, paths in checked.items():
        known = loader.Known()
        if root != Path():
            try:
                proj = load_project(root, with_flows=False)
            except ProjectError as exc:
                console.print(f"[red]Project error:[/red] {exc}")
                raise typer.Exit(2) from None
            known = loader.Known(frozenset(proj.topics.kinds), frozenset(proj.templates), frozenset(proj.emails))
        together = loader.FlowSet()
        others = flow_files(root / "flows") if root != Path() else []
        for path in dict.fromkeys([*paths, *others]):
            try:
                flow = loader.parse(path.read_text(encoding="utf-8"), file=str(path), known=known)
            except loader.FlowError as exc:
                if path in paths:
                    problems.extend(exc.problems)
                continue
            together.flows[flow.name] = flow
            together.files[flow.name] = str(path)
        mine = {str(p) for p in paths}
        problems.extend(p for p in together.check() if p.file in mine)
    for problem in problems:
        console.print(str(problem), highlight=False, soft_wrap=True)
    if problems:
        console.print(f"[red]{len(problems)} problem(s)[/red] in {len({p.file for p in problems})} file(s)")
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {len(files)} flow file(s)")


@flows_app.command("test")
def flows_test(files: FlowFiles, project: ProjectOption = None) -> None:
    """Play the transcript tests kept next to each flow against the real engine."""
    from empathic.engine.transcripts import FileResult, run_file

    async def play() -> list[FileResult]:
        return [await run_file(path, project) for path in files]

    logging.basicConfig(level="ERROR")
    failed = 0
    for result in asyncio.run(play()):
        if result.error:
            console.print(f"[red]ERROR[/red] {result.file}: {result.error}", highlight=False)
            failed += 1
            continue
        for case in result.cases:
            if case.failure is None:
                console.print(f"[green]pass[/green] {result.file}: {case.name}", highlight=False, soft_wrap=True)
            else:
                failed += 1
                where = f"{result.file}:{case.failure.line}"
                console.print(f"[red]FAIL[/red] {where}: {case.name}: {case.failure.message}", highlight=False, soft_wrap=True)
                for line in case.transcript:
                    console.print(line, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@flows_app.command("schema")
def flows_schema() -> None:
    """Print the JSON Schema of a flow file."""
    import json

    from empathic.flows.schema import FLOW_SCHEMA

    print(json.dumps(FLOW_SCHEMA, indent=2))


@app.command("smsc-sim")
def smsc_sim(
    port: Annotated[int, typer.Option(help="TCP port to listen on (0: any free port, printed).")] = 2775,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    system_id: Annotated[str | None, typer.Option(help="The ESME system_id to accept (default: any).")] = None,
    password: Annotated[str | None, typer.Option(envvar="SMSC_SIM_PASSWORD", help="Password to require (default: any).")] = None,
    latency: Annotated[float, typer.Option(help="Seconds before each submit_sm_resp.")] = 0.0,
    receipts: Annotated[bool, typer.Option(help="Send delivery receipts that were asked for.")] = True,
    receipt_delay: Annotated[float, typer.Option(help="Seconds from submit_sm_resp to its receipt.")] = 0.0,
    receipt_format: Annotated[str, typer.Option(help="text, tlv or both.")] = "both",
    receipt_id_mode: Annotated[str, typer.Option(help="same, or hex_to_dec (receipt ids in decimal).")] = "same",
    fail_share: Annotated[float, typer.Option(help="Share of accepted texts whose receipt says UNDELIV.")] = 0.0,
    reject_share: Annotated[float, typer.Option(help="Share of submits refused (ESME_RINVDSTADR).")] = 0.0,
    throttle_share: Annotated[float, typer.Option(help="Share of submits answered ESME_RTHROTTLED.")] = 0.0,
    drop_after: Annotated[int, typer.Option(help="Close the connection at this submit_sm (0: never).")] = 0,
    drop_every: Annotated[bool, typer.Option(help="Drop at every drop_after-th submit, not once.")] = False,
    gsm_packed: Annotated[bool, typer.Option(help="data_coding 0 is packed septets.")] = False,
    mo_file: Annotated[Path | None, typer.Option(help='Lines "SOURCE DESTINATION TEXT" sent as texts from phones after the first receiving bind.')] = None,
    summary: Annotated[Path | None, typer.Option(help="Write the JSON summary (received, unique, duplicates, ...) here on exit.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the shares, for repeatable runs.")] = None,
) -> None:
    """Run an SMSC simulator (SMPP 3.4) for development, tests and benchmarks; Ctrl-C stops it
    and prints its summary."""
    import json

    from empathic.smsc.server import SmscSettings, serve as serve_smsc

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = SmscSettings(
            host=host, port=port, system_id=system_id, password=password, latency=latency, receipts=receipts,
            receipt_delay=receipt_delay, receipt_format=receipt_format, receipt_id_mode=receipt_id_mode,
            fail_share=fail_share, reject_share=reject_share, throttle_share=throttle_share, drop_after=drop_after,
            drop_every=drop_every, gsm_packed=gsm_packed, mo_file=mo_file, summary_path=summary, seed=seed,
        )
        settings.validate()
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    def started(smsc: object) -> None:
        console.print(f"SMSC simulator listening on {host}:{getattr(smsc, 'port', port)}", highlight=False)

    result = asyncio.run(serve_smsc(settings, started=started))
    console.print_json(json.dumps(result))


# -- people of the web app ---------------------------------------------------------------------

users_app = typer.Typer(help="Manage the people who sign in to the web app.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _with_database(data_dir: Path, work: Callable[[AsyncConnection, datetime], Awaitable[T]]) -> T:
    """Run `work(conn, now)` in one transaction on the migrated database (as `keys create`)."""
    from empathic.core.clock import SystemClock
    from empathic.engine.runtime import Settings
    from empathic.store.db import Database

    async def run() -> T:
        db = Database(Settings(data_dir=data_dir).resolved_database_url())
        try:
            await db.migrate()
            async with db.transaction() as conn:
                return await work(conn, SystemClock().now())
        finally:
            await db.close()

    return asyncio.run(run())


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="Their email: what they sign in with (one account per email).")],
    role: Annotated[str, typer.Option(help="admin, agent (answers and changes) or viewer (reads only).")] = "agent",
    workspace: Annotated[str, typer.Option(help="The workspace they belong to (made when new).")] = "ws_default",
    name: Annotated[str | None, typer.Option(help="Their name, as the app shows it.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read their password from standard input; else a one-time password is printed, "
                                 "which they replace at first sign-in.")] = False,
    data_dir: DataDir = Path("./empathic-data"),
) -> None:
    """Create a person who can sign in to the web app."""
    from empathic.core import passwords
    from empathic.core.errors import InputError
    from empathic.store import keys, users

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else passwords.one_time()
    try:
        users.normalize(email)
        users.role_of(role)
        passwords.check_new(password)
    except InputError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    hashed = passwords.hash_password(password)

    async def create(conn: AsyncConnection, now: datetime) -> str:
        await keys.ensure_workspace(conn, workspace, "Default workspace" if workspace == "ws_default" else workspace, now)
        user = await users.create(conn, workspace, email, role, hashed, now, name=name,
                                  must_change_password=not password_stdin)
        return user.email

    try:
        address = _with_database(data_dir, create)
    except InputError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"Created {address} ({role}) in {workspace}.", highlight=False)
    if not password_stdin:
        console.print("One-time password (shown only now; they choose their own at first sign-in):", highlight=False)
        print(password)


@users_app.command("list")
def users_list(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace's people.")] = None,
    data_dir: DataDir = Path("./empathic-data"),
) -> None:
    """List the people who can sign in: email, role, workspace and state."""
    from sqlalchemy import select

    from empathic.store import users
    from empathic.store.schema import workspaces

    async def read(conn: AsyncConnection, now: datetime) -> list[User]:
        spaces = [workspace] if workspace else list((await conn.execute(select(workspaces.c.id).order_by(workspaces.c.id))).scalars())
        return [user for space in spaces for user in await users.of_workspace(conn, space)]

    found = _with_database(data_dir, read)
    if not found:
        console.print("No one yet: add someone with `empathic users create EMAIL --role admin`.")
        return
    for user in found:
        state = "disabled" if user.disabled_at else ("must choose a password" if user.must_change_password else "active")
        print(f"{user.email}\t{user.role}\t{user.workspace_id}\t{state}")


@users_app.command("reset-password")
def users_reset_password(
    email: Annotated[str, typer.Argument(help="Whose password to reset.")],
    data_dir: DataDir = Path("./empathic-data"),
) -> None:
    """Give a person a new one-time password (printed once); their sessions end and a lock-out lifts."""
    from empathic.core import passwords
    from empathic.store import users

    password = passwords.one_time()
    hashed = passwords.hash_password(password)

    async def reset(conn: AsyncConnection, now: datetime) -> bool:
        user = await users.by_email(conn, email)
        if user is None:
            return False
        await users.set_password(conn, user, hashed, now, must_change=True)
        return True

    if not _with_database(data_dir, reset):
        console.print(f"[red]No one has the email {email!r}.[/red]", highlight=False)
        raise typer.Exit(1)
    console.print("New one-time password (shown only now; they choose their own at the next sign-in):", highlight=False)
    print(password)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
