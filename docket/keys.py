"""The installation's own ``SECRET_KEY`` when none is configured (never a constant shipped in the code).

Outside ``DOCKET_PRODUCTION`` Docket needs no configuration, yet the key that
signs sessions, messages and password-reset links must not be public: it is
generated on the first start and kept in the data folder (mode 0600), as the
embedded servers' passwords are. Every process of the installation (web
workers, Celery, management commands) reads the same file; the first one to
start writes it, atomically, so two processes starting at once agree.
"""

import os
import secrets
from pathlib import Path

FILENAME = "secret-key"
MIN_LENGTH = 50


def _read(path: Path) -> str:
    key = path.read_text().strip()
    if len(key) < MIN_LENGTH:
        raise RuntimeError(
            f"{path} holds no usable secret key (fewer than {MIN_LENGTH} characters); "
            "delete it to have a new one generated, or set DJANGO_SECRET_KEY"
        )
    return key


def installation_secret_key(data_dir) -> str:
    """This installation's secret key: read from ``data_dir``, or generated and stored there on first use."""
    path = Path(data_dir) / FILENAME
    if path.exists():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temporary file, then linked into place: a reader never sees half a
    # key, and if another process won the race its key is kept and ours discarded.
    tmp = path.with_name(f".{FILENAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(64) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)
