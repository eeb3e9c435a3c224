"""Decisions: the one pipeline every decision goes through, and escalation.

Human decisions (``decision_make``, also used by bulk and campaign decisions),
automated ones (``decision_automated``, intake's auto-actioned signals) and
replacing ones (``reversals.decision_replace``, an appeal's "modified"
outcome) are checked by their own entry point (who may decide, the ladder)
and then written by ``decisions_write``: one set-based statement for a list
of cases (the decisions, the cases' move to decided with the assignment
completed and the ``decided`` event, the QA sample, the strike, the reporters'
record), whose decisions come back loaded by the ORM, then
``statements.decisions_publish`` for the whole list (statements of reasons,
the enforcement rows written once with their bodies, reporters' notices): the queries of deciding N
cases do not grow with N. Deliveries are enqueued after commit.
"""

import json
import random
from dataclasses import dataclass
from datetime import UTC, timedelta

from django.db import connection, transaction
from django.utils import timezone

from casework import events
from casework.models import Case, Queue, Subject
from casework.services import ESCALATION_QUEUES, actor_fields, case_transition, lock_case, transition_check
from docket import roles
from docket.batches import chunks
from docket.conf import setting
from docket.errors import DocketError, forbidden, not_found
from docket.queueing import enqueue_on_commit
from docket.rows import loaded, loaded_rows, loaded_side_by_side, prepared, returning
from policies.models import VIOLATIONS, Action, Policy, PolicyVersion, ThreatClass, class_visible

from ..models import Assignment, Decision, Enforcement, Reviewer
from ..sor import public_explanation_clean, statement_terms
from ..statements import Publication, decisions_publish
from .common import (
    active_version_sql,
    assignment_active_lock,
    assignment_end,
    case_worker_require,
    reviewer_of,
    user_of,
)

ACTION_LABELS = dict(Action.choices)
DELIVER_TASK = "reviews.tasks.deliver_enforcements"
# Outbox rows per delivery message: a wave of automated decisions publishes a message per this many
# enforcements, not one each (a publish is a broker round trip on the request path).
DELIVERY_CHUNK = 100


def active_version_for(threat_class) -> PolicyVersion:
    version = (
        PolicyVersion.objects.filter(policy__threat_class=threat_class, status="active")
        .select_related("policy")
        .order_by("policy_id")
        .first()
    )
    if version is None:
        raise DocketError("no_active_policy", f"{threat_class.name} has no active policy version.", status=409)
    return version


def _active_versions(class_ids):
    """``({class id: its active version}, {class id: class})`` in one query (``active_version_for``'s choice);
    a class without an active version is read on its own."""
    versions, classes = {}, {}
    found = (
        PolicyVersion.objects.filter(policy__threat_class_id__in=class_ids, status="active")
        .select_related("policy__threat_class")
        .order_by("policy_id")
    )
    for version in found:
        class_id = version.policy.threat_class_id
        if class_id not in versions:
            versions[class_id] = version
            classes[class_id] = version.policy.threat_class
    missing = set(class_ids) - set(classes)
    if missing:
        classes.update((tc.pk, tc) for tc in ThreatClass.objects.filter(pk__in=missing))
    return versions, classes


def decision_validate(*, version, action, rule, duration_days, automated=False):
    """Ladder, rule and duration checks; returns the normalised ``(rule, duration_days)``."""
    if action not in version.ladder:
        raise DocketError(
            "action_not_allowed",
            f"{ACTION_LABELS.get(action, action)} is not on the ladder of {version.label}: "
            f"{', '.join(ACTION_LABELS.get(a, a) for a in version.ladder)}.",
        )
    rule = (rule or "").strip()
    if rule and rule not in version.rule_codes():
        raise DocketError(
            "invalid",
            f"Unknown rule {rule!r} for {version}.",
            errors={"rule": [f"Choose from {version.rule_codes()}."]},
        )
    if action in VIOLATIONS and not rule and not automated:
        raise DocketError("invalid", "A violation must cite a rule.", errors={"rule": ["This field is required."]})
    if duration_days is not None and (
        isinstance(duration_days, bool) or not isinstance(duration_days, int) or not 1 <= duration_days <= 3650
    ):
        raise DocketError("invalid", "Invalid duration.", errors={"duration_days": ["Between 1 and 3650 days."]})
    if action == "suspend" and duration_days is None:
        raise DocketError(
            "invalid", "A suspension needs a duration.", errors={"duration_days": ["Required for suspend."]}
        )
    if action == "no_violation":
        duration_days = None
    return rule, duration_days


def strike_account(*, kind, subject_id, owner_id):
    """The account a strike counts against: the subject itself, or its owner for content."""
    return subject_id if kind == Subject.Kind.ACCOUNT else owner_id


# --- the pipeline -------------------------------------------------------------------------------


@dataclass(slots=True)
class DecisionDraft:
    """One case's decision, checked and ready to write.

    ``case`` is the locked case with its class and subject (what the statement
    of reasons is made from). ``from_status`` is its status (it becomes
    decided), or ``None`` for a replacement (the case does not move).
    ``replaces`` names the decision a replacement takes the place of (its
    reporters were counted once).
    """

    case: Case
    from_status: str | None
    version: PolicyVersion
    action: str
    rule: str
    duration_days: int | None
    strike_account: int | None
    legal_escalation: bool
    reporter_count: int
    rationale: str = ""
    reviewer_id: int | None = None
    holdout: bool = False
    campaign_id: int | None = None
    replaces: Decision | None = None
    # What the statement of reasons says (``statements.decisions_publish``): the public explanation
    # and the DSA choices of the decision; ``group`` for a senior's bulk decision.
    public_explanation: str = ""
    territorial_scope: list | None = None
    decision_ground: str | None = None
    legal_ground: str | None = None
    group: bool = False

    def __post_init__(self):
        self.public_explanation = public_explanation_clean(self.public_explanation)

    @property
    def case_id(self):
        return self.case.pk

    @property
    def automated(self):
        return self.reviewer_id is None

    def statement_terms_check(self, *, now):
        """Refuse now (``400 invalid``) the DSA choices the statement of reasons would refuse when published."""
        statement_terms(
            threat_class=self.case.threat_class,
            action=self.action,
            duration_days=self.duration_days,
            decided_on=now.astimezone(UTC).date(),
            decision_ground=self.decision_ground,
            legal_ground=self.legal_ground,
            territorial_scope=self.territorial_scope,
        )

    def publication(self, decision) -> Publication:
        """What the decision written from this draft publishes (a campaign's decision is a group decision)."""
        decision.case = self.case
        decision.policy_version = self.version
        return Publication(
            decision=decision,
            territorial_scope=self.territorial_scope,
            decision_ground=self.decision_ground,
            legal_ground=self.legal_ground,
            group=self.group or self.campaign_id is not None,
            notify_reporters=self.replaces is None,
        )

    def enforcements(self):
        """A violation is enforced, plus a ``legal_report`` on legal-escalation classes; no violation, nothing."""
        if self.action not in VIOLATIONS:
            return []
        out = [{"action": self.action, "duration_days": self.duration_days}]
        if self.legal_escalation and self.action != "legal_report":
            out.append({"action": "legal_report", "duration_days": None})
        return out

    def reporters(self):
        """``(decided, upheld)`` added to each of the case's reporters.

        A first decision counts one more decided report, upheld if a violation
        (a case without reporters: nothing to count). A replacement changes only
        whether the reports were upheld.
        """
        violation = int(self.action in VIOLATIONS)
        if self.replaces is not None:
            return 0, violation - int(self.replaces.action in VIOLATIONS)
        if not self.reporter_count:
            return 0, 0
        return 1, violation

    def event(self):
        if self.replaces is not None:
            return events.decision_recorded(
                decision=None,
                replaces=self.replaces.pk,
                action=self.action,
                rule=self.rule,
                policy_version=self.version.pk,
            )
        return events.decided(
            from_status=self.from_status,
            decision=None,
            action=self.action,
            rule=self.rule,
            policy_version=self.version.pk,
            automated=self.automated,
        )

    def row(self, *, qa_rate):
        decided, upheld = self.reporters()
        event = self.event()
        violation = self.action in VIOLATIONS
        return {
            "case_id": self.case_id,
            "moves": self.from_status is not None,
            "reviewer_id": self.reviewer_id,
            "action": self.action,
            "rule": self.rule,
            "version_id": self.version.pk,
            "rationale": self.rationale or "",
            "public_explanation": self.public_explanation,
            "duration_days": self.duration_days,
            "automated": self.automated,
            "holdout": self.holdout,
            # A sample of first human decisions goes to blind QA.
            "qa": not self.automated and self.replaces is None and random.random() < qa_rate,
            "campaign_id": self.campaign_id,
            "strike_account": self.strike_account if violation else None,
            "strike_weight": self.version.strike_weight,
            "decided": decided,
            "upheld": upheld,
            "kind": event.kind,
            "detail": event.detail,
        }


# Each distinct reporter of a case gets the case's adjustment (summed over the cases of the
# batch), on their record over every class and on their record of the case's class
# (``ReporterClassRecord``: what a case of another class ranks by, if this one is unrestricted).
# ``adjust`` is (reporter_id, threat_class_id, decided, upheld). Right-hand sides read the row before
# the update (SQL semantics), as one adjustment must; a new class record starts from nothing, an
# existing one takes the raw adjustment.
# The reporter's other active cases now rank on a stale accuracy: ``rerank_pending_at`` has the
# periodic job re-rank them (``casework.priority.reporters_cases_rerank``).
# The raw adjustment of a class record already there (``excluded`` holds the clamped one a new record starts with).
_RAW = "(SELECT a.{0} FROM adjust a WHERE a.reporter_id = k.reporter_id AND a.threat_class_id = k.threat_class_id)"
_DECIDED, _UPHELD = _RAW.format("decided"), _RAW.format("upheld")
_REPORTERS_UPDATE_SQL = f"""
reporters AS (
    UPDATE casework_reporter p SET
        reports_decided = GREATEST(p.reports_decided + a.decided, 0),
        reports_upheld = CASE WHEN a.upheld > 0 THEN LEAST(p.reports_upheld + a.upheld, p.reports_decided + a.decided)
                              WHEN a.upheld < 0 THEN GREATEST(p.reports_upheld + a.upheld, 0)
                              ELSE p.reports_upheld END,
        rerank_pending_at = %(now)s
      FROM (SELECT reporter_id, sum(decided) AS decided, sum(upheld) AS upheld FROM adjust GROUP BY reporter_id) a
     WHERE p.id = a.reporter_id
),
class_records AS (
    INSERT INTO casework_reporterclassrecord AS k (reporter_id, threat_class_id, reports_decided, reports_upheld)
    SELECT reporter_id, threat_class_id, GREATEST(decided, 0), LEAST(GREATEST(upheld, 0), GREATEST(decided, 0))
      FROM adjust ORDER BY reporter_id, threat_class_id
    ON CONFLICT (reporter_id, threat_class_id) DO UPDATE SET
        reports_decided = GREATEST(k.reports_decided + {_DECIDED}, 0),
        reports_upheld = CASE WHEN {_UPHELD} > 0
                              THEN LEAST(k.reports_upheld + {_UPHELD}, k.reports_decided + {_DECIDED})
                              WHEN {_UPHELD} < 0 THEN GREATEST(k.reports_upheld + {_UPHELD}, 0)
                              ELSE k.reports_upheld END
)
"""

_DECISIONS_SQL = f"""
WITH r AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS r(
        case_id bigint, moves boolean, reviewer_id bigint, action text, rule text, version_id bigint,
        rationale text, public_explanation text, duration_days int, automated boolean, holdout boolean,
        qa boolean, campaign_id bigint, strike_account bigint, strike_weight int, decided int, upheld int,
        kind text, detail jsonb)
),
d AS (
    INSERT INTO reviews_decision (case_id, reviewer_id, action, rule, policy_version_id, rationale,
                                  public_explanation, duration_days, automated, holdout, qa_sampled, relabel,
                                  campaign_id, overturned, created_at)
    SELECT case_id, reviewer_id, action, rule, version_id, rationale, public_explanation, duration_days,
           automated, holdout, qa, false, campaign_id, false, %(now)s
      FROM r ORDER BY case_id
    RETURNING {returning(Decision)}
),
dr AS (SELECT d.id AS decision_id, r.* FROM d JOIN r ON r.case_id = d.case_id),
completed AS (
    UPDATE reviews_assignment a SET state = 'completed', ended_at = %(now)s
      FROM r WHERE a.case_id = r.case_id AND r.moves AND a.state = 'active'
),
moved AS (
    UPDATE casework_case c
       SET status = 'decided', decided_at = %(now)s, first_action_at = COALESCE(c.first_action_at, %(now)s),
           updated_at = %(now)s
      FROM r WHERE c.id = r.case_id AND r.moves
),
event AS (
    INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
    SELECT case_id, %(now)s, %(user)s, %(username)s::text, kind, detail || jsonb_build_object('decision', decision_id)
      FROM dr
),
qa AS (
    INSERT INTO reviews_qualityreview (decision_id, status, action, rule, created_at)
    SELECT decision_id, 'pending', '', '', %(now)s FROM dr WHERE qa
),
strike AS (
    INSERT INTO reviews_strike (account_id, decision_id, weight, created_at, expires_at)
    SELECT strike_account, decision_id, strike_weight, %(now)s, %(strike_expires)s
      FROM dr WHERE strike_account IS NOT NULL
),
adjust AS (
    SELECT s.reporter_id, c.threat_class_id, sum(r.decided) AS decided, sum(r.upheld) AS upheld
      FROM r JOIN casework_case c ON c.id = r.case_id JOIN LATERAL (
          SELECT DISTINCT reporter_id FROM casework_signal WHERE case_id = r.case_id AND reporter_id IS NOT NULL
      ) s ON true
     WHERE r.decided <> 0 OR r.upheld <> 0
     GROUP BY s.reporter_id, c.threat_class_id
),
{_REPORTERS_UPDATE_SQL}
SELECT {returning(Decision, "d")} FROM d ORDER BY d.case_id
"""


def decisions_write(drafts, *, actor, now) -> list[Decision]:
    """Write checked decisions on locked cases, all in one statement; the decisions in case id order.

    For each draft: the decision (recording the policy version), and unless it
    replaces another, the case's move to decided (``first_action_at`` kept
    once set) with its active assignment completed; the ``decided`` event (or
    ``decision_recorded`` for a replacement), one detail shape for every path;
    a QA sample of human decisions; for a violation a strike on the account
    (weighted by the version, expiring after the strike window) and the
    enforcement rows, delivered after commit; the reporters' record. The
    caller holds the case locks and has checked who decides and the ladder.
    """
    drafts = sorted(drafts, key=lambda d: d.case_id)
    if not drafts:
        return []
    for draft in drafts:
        if draft.from_status is not None:
            transition_check(draft.from_status, "decided", verb="be decided again")
    user, username = actor_fields(actor)
    qa_rate = setting("QA_SAMPLE_RATE")
    with prepared(
        _DECISIONS_SQL,
        {
            "rows": json.dumps([d.row(qa_rate=qa_rate) for d in drafts]),
            "now": now,
            "strike_expires": now + timedelta(days=setting("STRIKE_WINDOW_DAYS")),
            "user": user.pk if user else None,
            "username": username,
        },
    ) as cur:
        decisions = loaded_rows(Decision, cur.fetchall())
    publications, enforcements = [], []
    for draft, decision in zip(drafts, decisions, strict=True):
        publications.append(draft.publication(decision))
        enforcements.extend(
            Enforcement(
                decision=decision,
                kind=Enforcement.Kind.ENFORCE,
                action=e["action"],
                duration_days=e["duration_days"],
                status=Enforcement.Status.PENDING,
                attempts=0,
                next_attempt_at=now,
                last_error="",
                created_at=now,
            )
            for e in draft.enforcements()
        )
    # The statements of reasons, the enforcement rows with their bodies and the reporters' notices, fixed now.
    decisions_publish(publications, enforcements=enforcements, now=now)
    for decision in decisions:
        # The case read before the write was published from; whoever reads it next reads it as decided.
        Decision.case.field.delete_cached_value(decision)
    deliveries_enqueue([e.pk for e in enforcements])
    return decisions


def deliveries_enqueue(enforcement_ids):
    """After commit, ask workers to deliver them (``DELIVERY_CHUNK`` rows a message); a broker outage only
    delays (the sweep catches up)."""
    for chunk in chunks(sorted(enforcement_ids), DELIVERY_CHUNK):
        enqueue_on_commit(DELIVER_TASK, chunk, what=f"delivery of enforcement(s) {chunk[0]}..{chunk[-1]}")


def reporters_adjust(case_id, *, upheld):
    """Change whether the case's reports were upheld (an overturn): the pipeline's reporter rule, for one case."""
    with connection.cursor() as cur:
        cur.execute(
            "WITH adjust AS (SELECT DISTINCT s.reporter_id, c.threat_class_id, 0 AS decided, %(upheld)s AS upheld"
            " FROM casework_signal s JOIN casework_case c ON c.id = s.case_id"
            " WHERE s.case_id = %(case)s AND s.reporter_id IS NOT NULL), "
            + _REPORTERS_UPDATE_SQL
            + " SELECT count(*) FROM adjust",
            {"case": case_id, "upheld": upheld, "now": timezone.now()},
        )
        return cur.fetchone()[0]


# --- human decisions ----------------------------------------------------------------------------

# One round trip, four statements: the user's reviewer profile (whose clearances the checks read), lock the
# case (read with its class and subject: what the checks and the statement of reasons need), then, each with
# a snapshot taken after the lock, the holder of its active assignment (who may decide) and the class's
# active policy version. The decision statement follows.
_ACTIVE_VERSION_OF_CASE = active_version_sql(
    "(SELECT threat_class_id FROM casework_case WHERE id = %(case)s)",
    returning(PolicyVersion, "pv") + ", " + returning(Policy, "p"),
)
_DECISION_LOCK_SQL = f"""
SELECT {returning(Reviewer)} FROM reviews_reviewer WHERE user_id = %(user)s;
SELECT {returning(Case, "c")}, {returning(ThreatClass, "tc")}, {returning(Subject, "s")}
  FROM casework_case c
  JOIN policies_threatclass tc ON tc.id = c.threat_class_id
  JOIN casework_subject s ON s.id = c.subject_id
 WHERE c.id = %(case)s
   FOR NO KEY UPDATE OF c;
SELECT reviewer_id FROM reviews_assignment WHERE case_id = %(case)s AND state = 'active';
{_ACTIVE_VERSION_OF_CASE}
"""


@transaction.atomic
def decision_make(
    *,
    case_id,
    reviewer,
    action,
    rule,
    rationale="",
    duration_days=None,
    campaign=None,
    on_behalf_of_senior=False,
    public_explanation="",
    territorial_scope=None,
    decision_ground=None,
    legal_ground=None,
) -> Decision:
    """Record a human decision on a case and everything that follows from it.

    Only the reviewer holding the case's active assignment may decide
    (``not_assignee``), unless ``on_behalf_of_senior`` and they are a senior
    (bulk and campaign decisions). The action must be on the ladder of the
    class's active policy version (``action_not_allowed``); a violation cites
    one of its rules and ``suspend`` needs ``duration_days`` (``invalid``).
    The DSA choices (``public_explanation``, ``territorial_scope``,
    ``decision_ground``, ``legal_ground``) go into its statement of reasons
    (``400 invalid`` where the class does not allow them); a senior's decision
    on behalf of the queue is stated as partially automated. Then
    ``decisions_write``. Two round trips: decisions are the other half of
    every queue cycle. Only moderators and seniors decide (``forbidden``).
    """
    user = user_of(reviewer)
    case_worker_require(user)
    with connection.cursor() as cur:
        cur.execute(_DECISION_LOCK_SQL, {"case": case_id, "user": user.pk})
        reviewer_row = cur.fetchone()
        cur.nextset()
        row = cur.fetchone()
        cur.nextset()
        holder = cur.fetchone()
        cur.nextset()
        version_row = cur.fetchone()
    if reviewer_row is None:
        raise forbidden("Only reviewers can do this.")
    reviewer = loaded(Reviewer, reviewer_row)
    user.reviewer = reviewer  # the profile just read, for whoever asks the user next
    if row is None:
        raise not_found("No such case.")
    case, case.threat_class, case.subject = loaded_side_by_side(row, Case, ThreatClass, Subject)
    tc = case.threat_class
    if not class_visible(restricted=tc.restricted, slug=tc.slug, clearances=reviewer.clearances):
        raise not_found("No such case.")
    holder_id = holder[0] if holder else None
    if holder_id != reviewer.pk and not (on_behalf_of_senior and roles.has(reviewer.user, roles.SENIOR)):
        raise forbidden("Only the reviewer holding this case may decide it.", code="not_assignee")
    transition_check(case.status, "decided", verb="be decided again")
    if version_row is None:
        raise DocketError("no_active_policy", f"The {tc.slug} class has no active policy version.", status=409)
    version, version.policy = loaded_side_by_side(version_row, PolicyVersion, Policy)
    draft = draft_for(
        case,
        version=version,
        action=action,
        rule=rule,
        duration_days=duration_days,
        rationale=rationale,
        reviewer_id=reviewer.pk,
        campaign_id=campaign.pk if campaign is not None else None,
        public_explanation=public_explanation or "",
        territorial_scope=territorial_scope,
        decision_ground=decision_ground,
        legal_ground=legal_ground,
        group=bool(on_behalf_of_senior),
    )
    [decision] = decisions_write([draft], actor=reviewer, now=timezone.now())
    decision.reviewer = reviewer  # its decider, as the answer shows them (no second read)
    return decision


def draft_for(case, *, action, rule="", duration_days=None, automated=False, version=None, **extra) -> DecisionDraft:
    """A checked draft for a locked case (``case.threat_class`` and ``case.subject`` loaded).

    ``version``: the class's active version when the caller already read it (a batch over one class).
    """
    version = version or active_version_for(case.threat_class)
    rule, duration_days = decision_validate(
        version=version, action=action, rule=rule, duration_days=duration_days, automated=automated
    )
    subject = case.subject
    return DecisionDraft(
        case=case,
        from_status=case.status,
        version=version,
        action=action,
        rule=rule,
        duration_days=duration_days,
        strike_account=strike_account(kind=subject.kind, subject_id=subject.pk, owner_id=subject.owner_id),
        legal_escalation=case.threat_class.legal_escalation,
        reporter_count=case.reporter_count,
        holdout=case.holdout,
        **extra,
    )


@transaction.atomic
def decision_automated(*, case, action, at=None) -> Decision:
    """Automation decides a case (``automated=True``, no reviewer): the same pipeline as a human decision.

    The action must be on the class's active ladder (``action_not_allowed``).
    A human holding the case loses the assignment (completed) with the event.
    """
    case = lock_case(case.pk)
    transition_check(case.status, "decided", verb="be decided again")
    draft = draft_for(case, action=action, automated=True)
    [decision] = decisions_write([draft], actor="automation", now=at or timezone.now())
    return decision


_WAVE_UNREAD = (
    "priority",
    "priority_breakdown",
    "rank_tier",
    "rank",
    "rank_due_at",
    "signal_strength",
    "reporter_weight",
    "velocity",
    "legal_hold_released_at",
    "personal_data_purged_at",
    "last_signal_at",
    "sla_due_at",
    "created_at",
    "updated_at",
    "subject__case_class_ids",
    "subject__class_ids",
    "subject__created_at",
    "subject__updated_at",
)


@transaction.atomic(savepoint=False)  # intake calls it inside its own transaction
def decisions_automated(*, actions, at=None):
    """Automation decides many cases at once (a wave of auto-actioned signals): one lock, one write.

    ``actions`` maps case ids to the action. The same rule as ``decision_automated``
    for each case (``draft_for``, then ``decisions_write``, which writes every
    decision of the wave in one statement): the cases are locked in one query,
    the active version read once per class. A case the rule refuses (its action
    left the ladder, it was decided meanwhile, it is gone) is left as it is and
    returned in ``refused`` with the error. Returns ``(decisions, refused)``.
    """
    now = at or timezone.now()
    cases = list(
        Case.objects.select_for_update(no_key=True, of=("self",))
        .select_related("subject")
        # Not the ranking, timing and classes columns no decision reads: a wave loads thousands of cases.
        .defer(*_WAVE_UNREAD)
        .filter(pk__in=list(actions))
        .order_by("pk")
    )
    # The wave's few classes, each read once with its active version (not once per case).
    versions, classes = _active_versions({case.threat_class_id for case in cases})
    drafts, refused = [], {}
    for case in cases:
        case.threat_class = classes[case.threat_class_id]
        try:
            transition_check(case.status, "decided", verb="be decided again")
            version = versions.get(case.threat_class_id) or active_version_for(case.threat_class)
            drafts.append(draft_for(case, action=actions[case.pk], automated=True, version=version))
        except DocketError as e:
            refused[case.pk] = e
    for case_id in set(actions) - {c.pk for c in cases}:
        refused[case_id] = not_found("No such case.")
    return decisions_write(drafts, actor="automation", now=now), refused


@transaction.atomic
def decisions_bulk(
    *,
    case_ids,
    reviewer,
    action,
    rule,
    rationale="",
    duration_days=None,
    public_explanation="",
    territorial_scope=None,
    decision_ground=None,
    legal_ground=None,
):
    """One decision applied to many cases at once (a queue's selected cases): one lock, one write.

    The same rule for each case as ``decision_make`` on behalf of a senior
    (visibility, who may decide, the transition, the active version's ladder,
    rule and duration, the DSA choices), then ``decisions_write`` for all the
    cases it accepts in one statement, stated as partially automated. A case
    the rule refuses is left as it is and returned in ``refused`` with the
    error. Returns ``(decisions, refused)``, in case id order.
    """
    reviewer = reviewer_of(reviewer)
    case_worker_require(reviewer.user)
    senior = roles.has(reviewer.user, roles.SENIOR)
    now = timezone.now()
    case_ids = sorted(set(case_ids))
    cases = list(
        Case.objects.select_for_update(no_key=True, of=("self",))
        .select_related("threat_class", "subject")
        .filter(pk__in=case_ids)
        .order_by("pk")
    )
    holders = dict(
        Assignment.objects.filter(case_id__in=[c.pk for c in cases], state="active").values_list(
            "case_id", "reviewer_id"
        )
    )
    versions, drafts, refused = {}, [], {}
    for case in cases:
        tc = case.threat_class
        try:
            if not class_visible(restricted=tc.restricted, slug=tc.slug, clearances=reviewer.clearances):
                raise not_found("No such case.")
            if holders.get(case.pk) != reviewer.pk and not senior:
                raise forbidden("Only the reviewer holding this case may decide it.", code="not_assignee")
            transition_check(case.status, "decided", verb="be decided again")
            if tc.pk not in versions:
                versions[tc.pk] = active_version_for(tc)
            draft = draft_for(
                case,
                version=versions[tc.pk],
                action=action,
                rule=rule,
                duration_days=duration_days,
                rationale=rationale,
                reviewer_id=reviewer.pk,
                public_explanation=public_explanation or "",
                territorial_scope=territorial_scope,
                decision_ground=decision_ground,
                legal_ground=legal_ground,
                group=True,
            )
            draft.statement_terms_check(now=now)
        except DocketError as e:
            refused[case.pk] = e
        else:
            drafts.append(draft)
    for case_id in set(case_ids) - {c.pk for c in cases}:
        refused[case_id] = not_found("No such case.")
    return decisions_write(drafts, actor=reviewer, now=now), dict(sorted(refused.items()))


# --- escalation ---------------------------------------------------------------------------------


@transaction.atomic
def case_escalate(*, case_id, actor, queue_slug, reason) -> Case:
    """Move a case to ``escalations`` or ``legal``; the holder's assignment ends (escalated).

    Allowed to the holder or a senior (``not_assignee`` otherwise), never to appeals-only staff
    (``forbidden``). The case is
    ``escalated`` and waits for a claim in its new queue.
    """
    if queue_slug not in ESCALATION_QUEUES:
        raise DocketError("invalid", "Escalate to escalations or legal.", errors={"queue": list(ESCALATION_QUEUES)})
    reason = (reason or "").strip()
    if not reason:
        raise DocketError("invalid", "Say why.", errors={"reason": ["This field is required."]})
    user = user_of(actor)
    case_worker_require(user)
    case = lock_case(case_id)
    tc = case.threat_class
    is_senior = roles.has(user, roles.SENIOR)
    reviewer = getattr(user, "reviewer", None) if hasattr(user, "reviewer") else None
    clearances = reviewer.clearances if reviewer is not None else ()
    if not class_visible(restricted=tc.restricted, slug=tc.slug, clearances=clearances):
        raise not_found("No such case.")
    assignment = assignment_active_lock(case.pk)
    holder = assignment is not None and reviewer is not None and assignment.reviewer_id == reviewer.pk
    if not holder and not is_senior:
        raise forbidden("Only the holder or a senior may escalate this case.", code="not_assignee")
    transition_check(case.status, "escalated", verb="be escalated")
    target = Queue.objects.get(slug=queue_slug)
    now = timezone.now()
    if assignment is not None:
        assignment_end(assignment, state=Assignment.State.ESCALATED, now=now)
    previous_queue = case.queue.slug if case.queue_id else None
    case.queue = target
    case_transition(
        case=case,
        to="escalated",
        actor=user,
        event=events.escalated(
            from_status=case.status, from_queue=previous_queue, to_queue=target.slug, reason=reason[:2000]
        ),
        at=now,
        extra_fields=("queue",),
    )
    return case
