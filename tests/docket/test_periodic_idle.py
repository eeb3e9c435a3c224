"""With nothing new, the periodic jobs write nothing: a second idle run of every job changes no row (issue 14).

Rows written are read from PostgreSQL's own per-transaction table counters
(``pg_stat_xact_user_tables``: inserts, updates and deletes this transaction
made, whether or not a value changed), so a job that rewrites rows with the
same values is caught too.
"""

import pytest
from django.db import connection

from docket.periodic import job_run, jobs
from tests.factories import SourceFactory

pytestmark = pytest.mark.django_db

# What an idle run still writes, by design: the source health check records when it checked each source
# (``health_checked_at``, "Last checked" on the source page), one row per source every five minutes.
RECORDS_ITS_RUN = {"policies_signalsource": (0, 2, 0)}  # the world's two sources, updated

COUNTERS = "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables"


def _written():
    with connection.cursor() as cur:
        cur.execute(COUNTERS)
        return {name: (ins, upd, dele) for name, ins, upd, dele in cur.fetchall()}


def _world(api_for, platform, moderator):
    """Cases through intake (machine and user reports, two classes), one claimed and decided, one held."""
    SourceFactory(slug="idle-classifier", kind="classifier", trust=0.9)
    signals = [
        {
            "external_id": f"idle-{i}",
            "threat_class": "spam" if i < 6 else "harassment",
            "subject": {"kind": "account", "external_id": f"idle-u-{i % 4}", "reach": 100 + i},
            **(
                {"source": "user-reports", "reporter": f"idle-r-{i % 3}"}
                if i % 2
                else {"source": "idle-classifier", "score": 0.6}
            ),
        }
        for i in range(10)
    ]
    stored = api_for(platform).post("/api/v1/signals/", signals, format="json")
    assert stored.status_code in (200, 201), stored.content
    client = api_for(moderator)
    claimed = client.post("/api/v1/queues/spam/claim/").json()
    case_id = claimed["case"]["id"] if isinstance(claimed.get("case"), dict) else claimed["case"]
    decided = client.post(
        f"/api/v1/cases/{case_id}/decision/", {"action": "remove", "rule": "SP-1", "rationale": "x"}, format="json"
    )
    assert decided.status_code == 201, decided.content
    assert client.post("/api/v1/queues/spam/claim/").status_code == 201  # one case stays held


def test_a_second_idle_run_of_every_periodic_job_writes_no_row(api_for, platform, make_user):
    moderator = make_user("idle-mod", "moderator", queues=["spam", "harassment"])
    _world(api_for, platform, moderator)
    for job in jobs():  # the first run does what the world left to do (rank, mark due, fold tallies...)
        job_run(job.name)
    before = _written()
    for job in jobs():
        job_run(job.name)
    after = _written()
    changed = {t: tuple(a - b for a, b in zip(n, before.get(t, (0, 0, 0)), strict=True)) for t, n in after.items()}
    changed = {t: n for t, n in changed.items() if any(n)}
    assert "casework_case" not in changed, changed
    assert changed == RECORDS_ITS_RUN, f"rows (inserted, updated, deleted) by an idle run: {changed}"
