"""``python -m docket.run``: the one command that runs Docket on this machine.

1. services: with ``DATABASE_URL`` / ``REDIS_URL`` unset, the embedded PostgreSQL and
   Redis of the data folder (``docket/embedded.py``), started if they are not running;
2. ``migrate``; on the first start of an embedded database, the demo (``docket_demo``);
   an ``admin`` superuser whose generated password is kept in the data folder;
   ``collectstatic`` (incremental: only changed files are copied);
3. child processes, each in its own process group: the web server (gunicorn on
   127.0.0.1:``DOCKET_PORT``, default 8000), a Celery worker (concurrency 2) and Celery
   beat (schedule file in the data folder); their output is prefixed with their name.

On SIGINT/SIGTERM, or as soon as any child exits, every child's process group is
terminated, and the embedded servers this run started are stopped (servers that were
already running are left running for whoever started them).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
from io import StringIO
from pathlib import Path

from docket import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 90
STOP_TIMEOUT = 20

_print_lock = threading.Lock()


class _Stop(BaseException):
    """Raised by the signal handler: unwinds setup or the wait loop into cleanup."""


def say(message: str = "") -> None:
    with _print_lock:
        print(message, flush=True)


def _on_signal(signum, frame):
    # Later signals must not interrupt the cleanup the first one started.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


# --- setup (in this process) -------------------------------------------------------------


EMBEDDED = {"postgres": ("DATABASE_URL", embedded.ensure_postgres), "redis": ("REDIS_URL", embedded.ensure_redis)}


def services_to_embed() -> list[str]:
    """The embedded services no URL in the environment replaces."""
    return [name for name, (env_name, _) in EMBEDDED.items() if not os.environ.get(env_name)]


def ensure_services(data_dir: Path, names: list[str]) -> None:
    """Start those embedded services if needed and export their URLs to the children."""
    for name in names:
        env_name, ensure = EMBEDDED[name]
        # Children read the URL from the environment and never touch the launcher.
        os.environ[env_name] = ensure(data_dir).url


def prepare_database(data_dir: Path, *, embedded_db: bool) -> list[str]:
    """migrate, admin, demo, static files. Returns the login lines to print."""
    import django
    from django.contrib.auth import get_user_model
    from django.core.management import call_command, get_commands
    from django.db import connections

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docket.settings")
    django.setup()

    say("== migrate")
    call_command("migrate", interactive=False, verbosity=1)

    password_file = data_dir / "admin-password"
    if not password_file.exists():
        password_file.touch(mode=0o600)
        password_file.write_text(secrets.token_urlsafe(12) + "\n")
    password = password_file.read_text().strip()
    user, created = get_user_model().objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
        say("created the superuser admin")
    # The superuser is also a policy admin, so the dashboard and governance pages open for it too.
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get_or_create(name="policy_admin")[0])

    demo_file = data_dir / "demo-logins.txt"
    seeded_marker = data_dir / "demo-seeded"
    if not embedded_db:
        say("external database: no demo seeded (python manage.py docket_demo seeds one)")
    elif seeded_marker.exists():
        pass
    elif "docket_demo" not in get_commands():
        say("note: manage.py has no docket_demo command yet; starting without demo data")
    else:
        say("== seeding the demo (first start of this data folder)")
        out = StringIO()
        try:
            call_command("docket_demo", stdout=out)
        except Exception:  # a broken demo must not keep Docket from running
            traceback.print_exc()
            say("!! docket_demo failed; starting without demo data (it is retried next start)")
        else:
            say(out.getvalue().rstrip())
            demo_file.write_text(out.getvalue())
            seeded_marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))

    say("== collectstatic")
    call_command("collectstatic", interactive=False, verbosity=0)

    user.refresh_from_db()
    logins = []
    if user.check_password(password):
        logins.append(f"  admin (superuser and policy admin):  admin / {password}")
    else:
        logins.append("  admin: its password was changed since; the stored one no longer works")
    if demo_file.exists() and embedded_db:
        lines = [line for line in demo_file.read_text().splitlines() if line.strip()]
        # The login block docket_demo ends with, without its seeding tallies.
        start = next((i for i, line in enumerate(lines) if "login" in line.lower()), 0)
        logins += ["  " + line for line in lines[start:]]
    connections.close_all()
    return logins


# --- children ------------------------------------------------------------------------------------


def _die_with_parent():
    """A preexec_fn that has the kernel SIGTERM the child if this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl, pr_set_pdeathsig = ctypes.CDLL(None).prctl, 1  # looked up before fork, not in the child
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def web_serving_args(workers, threads) -> list[str]:
    """How gunicorn serves Docket (``make run``, and the benchmarks that measure what it serves).

    Threads, not sync workers: a sync worker serves one request at a time and closes the connection after
    each; on two cores, 2 processes x 8 threads served 16 claiming reviewers 1.4-1.8x faster than 4 x 4
    and 2x faster than 2 sync workers (issue 14's measurements, docs/operations.md). Keep-alive outlasts
    a reviewer's pause between pages: with gunicorn's 2 s default, a form posted after reading a case for
    a few seconds could go out on a connection the server was just closing and fail.

    Preloaded: the application is loaded once, before the workers fork, so every worker is ready the
    moment the server answers. Loaded in each worker, the first one up took every connection opened
    while the others were still importing (a team signing in after a restart), and kept them while they
    stayed alive: in one ``bench.live`` run, one of two workers served every request and the other none.
    (Which worker accepts a connection is still a race: preloaded, the split of a run's requests ranged
    from even to 1:4, never all to one.)
    ``docket.wsgi`` freezes what loading made before the fork (the garbage collector's pauses).
    """
    return [
        f"--workers={workers}",
        "--worker-class=gthread",
        f"--threads={threads}",
        "--keep-alive=30",
        "--preload",
    ]


def child_commands(port: int, data_dir: Path) -> dict[str, list[str]]:
    import gunicorn.config

    workers = os.environ.get("WEB_CONCURRENCY", "2")
    threads = os.environ.get("WEB_THREADS", "8")
    web = ["gunicorn", "docket.wsgi:application", f"--bind=127.0.0.1:{port}", *web_serving_args(workers, threads)]
    web += ["--graceful-timeout=10", "--access-logfile=-"]
    if hasattr(gunicorn.config, "ControlSocketDisable"):  # gunicorn >= 25.1
        web.append("--no-control-socket")  # nothing here uses gunicornc
    worker = ["celery", "-A", "docket", "worker", "--concurrency=2", "--loglevel=INFO"]
    worker.append(f"--hostname=docket-{port}@%h")
    beat = ["celery", "-A", "docket", "beat", "--loglevel=INFO"]
    beat.append(f"--schedule={data_dir / 'celerybeat-schedule'}")
    return {name: [sys.executable, "-m", *cmd] for name, cmd in (("web", web), ("worker", worker), ("beat", beat))}


def start_children(commands: dict[str, list[str]]) -> dict[str, subprocess.Popen]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    preexec = _die_with_parent()
    children = {}
    for name, cmd in commands.items():
        children[name] = subprocess.Popen(
            cmd,
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: signals reach it only from us
            preexec_fn=preexec,
        )
    # Reader threads only after every fork: preexec_fn is not safe alongside threads.
    width = max(map(len, children))
    for name, proc in children.items():
        threading.Thread(target=_relay, args=(name.rjust(width), proc.stdout), daemon=True).start()
    return children


def _relay(prefix: str, stream) -> None:
    for raw in iter(stream.readline, b""):
        say(f"{prefix} | {raw.decode(errors='replace').rstrip()}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_children(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM each leader, then SIGTERM/SIGKILL whatever is left of its process group."""
    for proc in children.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {STOP_TIMEOUT}s; killing it")
    for proc in children.values():  # the leader's pid is its group's id
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            if not _group_alive(proc.pid):
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            end = time.monotonic() + grace
            while _group_alive(proc.pid) and time.monotonic() < end:
                proc.poll()  # reap the leader if it was the one left
                time.sleep(0.1)
        proc.poll()


def wait_ready(port: int, children: dict[str, subprocess.Popen]) -> bool:
    """Whether the web server answers (any status below 500) before a child dies."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in children.values()):
            return False
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/admin/login/")
            if conn.getresponse().status < 500:
                return True
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.3)
    return False


def watch(children: dict[str, subprocess.Popen]) -> int:
    """Block until a child exits (returns 1); a signal raises _Stop instead."""
    while True:
        for name, proc in children.items():
            if proc.poll() is not None:
                say(f"!! {name} exited with status {proc.returncode}; stopping Docket")
                return 1
        time.sleep(0.5)


# --- main ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docket.run", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    data_dir = embedded.default_data_dir().resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ["DOCKET_DATA_DIR"] = str(data_dir)
    port = int(os.environ.get("DOCKET_PORT", "8000"))
    if not embedded.port_free(port):
        say(f"error: 127.0.0.1:{port} is in use; set DOCKET_PORT to another port")
        return 2

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    children: dict[str, subprocess.Popen] = {}
    in_use = services_to_embed()
    already_running = {name for name, info in embedded.status(data_dir).items() if info["running"]}
    # Stopped on exit: what this run starts (even if interrupted while starting it).
    ours = [name for name in in_use if name not in already_running]
    code = 0
    try:
        say(f"== services (data folder {data_dir})")
        for name in EMBEDDED:
            how = "external (from the environment)"
            if name in in_use:
                how = "embedded, already running" if name in already_running else "embedded, starting"
            say(f"{name}: {how}")
        ensure_services(data_dir, in_use)
        logins = prepare_database(data_dir, embedded_db="postgres" in in_use)

        say("== starting web, worker, beat")
        children = start_children(child_commands(port, data_dir))
        url = f"http://127.0.0.1:{port}/"
        if not wait_ready(port, children):
            say(f"!! the web server did not answer at {url} within {READY_TIMEOUT}s")
            return 1
        say("=" * 72)
        say(f"Docket is running at {url}")
        for line in logins:
            say(line)
        say(f"  data folder: {data_dir}")
        say("  stop with Ctrl-C")
        say("=" * 72)
        code = watch(children)
    except _Stop as stop:
        say(f"== {stop.args[0]}: stopping")
    except Exception:
        traceback.print_exc()
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_children(children)
        if ours:
            stopped = embedded.stop(data_dir, services=ours)
            say(f"stopped embedded {', '.join(stopped) or 'services: none was running'}")
        say("Docket stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
