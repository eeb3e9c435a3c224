"""Moderator journeys through the web UI, for Locust: how many concurrent moderators one machine serves.

    locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless -u 50 -r 5 -t 5m

Against a running Docket (gunicorn, a worker and beat; ``python -m docket.run``
or the operations guide), seeded with reviewers ``bench-r0`` ... (password
``LOCUST_PASSWORD``, default ``bench-pass``, e.g. ``manage.py docket_user``
or ``bench.common.reviewers``) working the spam queue, an appeals user
``bench-appeals`` and a platform token in ``LOCUST_PLATFORM_TOKEN``
(``python -m bench.load`` makes them, starts the servers and steps ``-u``):

- ``Moderator``: signs in, opens the home page, claims the next case, reads
  it (think time), decides it, and goes on to the next case the decision
  claimed (the UI's "decide and next"), each page a request of its own;
- ``AppealsStaff``: signs in, reads the appeals queue and opens one of the
  appeals it lists (the appeal page);
- ``Platform``: posts batches of 20 signals through the intake API.

``LOCUST_APPEALS`` appeals staff (default 2) and ``LOCUST_PLATFORMS`` intake
clients (default 1) run whatever ``-u`` is, so ``-u`` minus those is the
number of moderators. Moderators sign in as ``bench-r<LOCUST_FIRST + i>``
(the sign-in throttle allows 5 password checks per user in 15 minutes, so
successive runs start further along). With ``LOCUST_SIGNED_IN_FILE`` and
``LOCUST_SIGNING_IN`` (moderators + appeals staff), pages wait until every
user has signed in; the statistics restart then. Raise ``-u`` until the p99 of
the pages passes 200 ms; Locust's summary names the slowest pages.
"""

import itertools
import os
import random
import re
import time

import gevent
from gevent.event import Event
from locust import HttpUser, between, events, task

PASSWORD = os.environ.get("LOCUST_PASSWORD", "bench-pass")
MODERATORS = int(os.environ.get("LOCUST_MODERATORS", "64"))
FIRST = int(os.environ.get("LOCUST_FIRST", "0"))
_numbers = itertools.count()
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_CASE = re.compile(r"/cases/(\d+)/")
_APPEAL = re.compile(r'href="/appeals/(\d+)/"')


# With ``LOCUST_SIGNED_IN_FILE`` set, nobody opens a page before every user who signs in has: the statistics are
# reset then, the file is written (``bench.load`` measures from it) and the run ends ``LOCUST_MEASURE_SECONDS``
# later. A sign-in is a deliberate password hash
# (a fraction of a second of CPU, seconds on a loaded machine, each holding a server thread); measured alongside
# them, the pages' p99 was the sign-in storm's, and the more moderators the longer it lasted.
SIGNED_IN_FILE = os.environ.get("LOCUST_SIGNED_IN_FILE")
SIGNING_IN = int(os.environ.get("LOCUST_SIGNING_IN", "0"))  # the users who sign in (moderators + appeals staff)
MEASURE_SECONDS = float(os.environ.get("LOCUST_MEASURE_SECONDS", "0"))  # then stop this long after (0: at -t)
GATE_SECONDS = 300
_signed_in = itertools.count(1)
_everyone_in = Event()


def _sign_in(user, username):
    page = user.client.get("/login/", name="sign-in page")
    token = _CSRF.search(page.text)
    user.client.post(
        "/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1) if token else ""},
        name="sign in",
    )
    if SIGNED_IN_FILE:
        if next(_signed_in) >= SIGNING_IN:
            runner = user.environment.runner
            runner.stats.reset_all()
            with open(SIGNED_IN_FILE, "w") as f:
                f.write(str(time.time()))
            if MEASURE_SECONDS:
                gevent.spawn_later(MEASURE_SECONDS, runner.quit)  # as Locust's own -t ends a run
            _everyone_in.set()
        _everyone_in.wait(GATE_SECONDS)
        gevent.sleep(random.uniform(0, 6))  # not all at once: their first pages spread over a think time


@events.test_stop.add_listener
def _open_the_gate(**kwargs):
    _everyone_in.set()  # a run stopped during the sign-ins leaves nobody waiting


def _csrf(user):
    return user.client.cookies.get("csrftoken", "")


class Moderator(HttpUser):
    weight = 8
    wait_time = between(2, 6)  # reading a case takes a moderator seconds, not milliseconds

    def on_start(self):
        _sign_in(self, f"bench-r{FIRST + next(_numbers) % MODERATORS}")
        self.client.get("/", name="home")
        self.case_id = None

    def _go_on(self, answer):
        """Where a claim or a decision sends the moderator: the next case's page, or home when there is none."""
        found = _CASE.search(answer.headers.get("Location", ""))
        self.case_id = found.group(1) if found else None
        if self.case_id:
            self.client.get(f"/cases/{self.case_id}/", name="case page")
        else:
            self.client.get("/", name="home")

    @task
    def next_case(self):
        """Claim when holding nothing; else decide the case read during the think time (which claims the next)."""
        if self.case_id is None:
            claimed = self.client.post(
                "/queues/spam/claim/",
                data={"csrfmiddlewaretoken": _csrf(self)},
                name="claim next",
                allow_redirects=False,
            )
            self._go_on(claimed)
            return
        decided = self.client.post(
            f"/cases/{self.case_id}/decision/",
            data={"action": "remove", "rule": "SP-1", "rationale": "", "csrfmiddlewaretoken": _csrf(self)},
            name="decide",
            allow_redirects=False,
        )
        self._go_on(decided)


class AppealsStaff(HttpUser):
    fixed_count = int(os.environ.get("LOCUST_APPEALS", "2"))
    wait_time = between(5, 15)

    def on_start(self):
        _sign_in(self, "bench-appeals")

    @task
    def appeals_queue(self):
        listed = _APPEAL.findall(self.client.get("/appeals/", name="appeals queue").text)
        if listed:
            self.client.get(f"/appeals/{random.choice(listed)}/", name="appeal page")


class Platform(HttpUser):
    fixed_count = int(os.environ.get("LOCUST_PLATFORMS", "1"))
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.client.headers["Authorization"] = f"Token {os.environ.get('LOCUST_PLATFORM_TOKEN', '')}"

    @task
    def intake(self):
        items = [
            {
                "source": "spam-classifier",
                "external_id": f"locust-{random.getrandbits(62)}",
                "threat_class": "spam",
                "subject": {"kind": "account", "external_id": f"bench-u-{random.randint(1, 100_000)}", "reach": 10},
                "score": 0.6,
            }
            for _ in range(20)
        ]
        self.client.post("/api/v1/signals/", json=items, name="intake (20 signals)")
