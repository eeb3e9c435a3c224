"""Policy writes: version activation and threshold governance.

Thresholds move only through a ``ThresholdChange``: proposed with its blast
radius, applied when a *different* policy admin approves, rolled back by
proposing the old values again.
"""

import re
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from docket import roles
from docket.errors import DocketError
from docket.hooks import Contributions, Hook

from .models import Policy, PolicyVersion, SignalSource, ThreatClass, Threshold, ThresholdChange
from .thresholds import disposition_for

BLAST_RADIUS_WINDOW_DAYS = 7
# What a (source, class) pair without a Threshold row does: review everything, automate nothing.
DEFAULT_REVIEW_AT = 0.0
DEFAULT_AUTO_ACTION_AT = None
RULE_CODE = re.compile(r"[A-Za-z0-9_.-]{1,80}")

# What follows a version's activation in the apps above (reviews: the relabel sample), each called as
# ``react(version=version)`` inside the activation's transaction, in registration order.
version_activated = Contributions("policies.version_activated")
# ``(source, threat_class, since) -> a queryset of the pair's stored signals that occurred after since``, with their
# ``score``: what a threshold change's blast radius counts. Signals are casework's; casework registers it when ready.
signals_since = Hook("policies.signals_since")


# --- Policy versions ----------------------------------------------------------


@transaction.atomic
def policy_version_activate(*, version, actor):
    """Make ``version`` the policy's only active version; the previous one is retired.

    Returns the activated version. Decisions made from now on record it. Then, in the
    same transaction, every ``version_activated`` contribution reacts (reviews starts a
    relabel sample: recent human decisions of the class, made under earlier versions,
    are queued for blind re-review under this one, so precision is never mixed across a
    label shift).
    """
    version = PolicyVersion.objects.select_for_update(no_key=True).get(pk=version.pk)
    if version.status == PolicyVersion.Status.ACTIVE:
        raise DocketError("invalid_transition", "This version is already active.", status=409)
    if version.status == PolicyVersion.Status.RETIRED:
        raise DocketError("invalid_transition", "A retired version cannot be reactivated; copy it.", status=409)
    now = timezone.now()
    PolicyVersion.objects.select_for_update(no_key=True).filter(policy=version.policy, status="active").update(
        status="retired", retired_at=now
    )
    version.status = PolicyVersion.Status.ACTIVE
    version.effective_at = now
    version.activated_by = actor
    version.save(update_fields=["status", "effective_at", "activated_by"])
    for react in version_activated:
        react(version=version)
    return version


@transaction.atomic
def policy_version_draft_from(*, version, actor) -> PolicyVersion:
    """A new draft of the same policy carrying ``version``'s text, rules, ladder and strike weight.

    The way to change a published version: edit the copy, then activate it.
    Numbered after the policy's highest version (the policy row is locked so
    two admins copying at once get consecutive numbers).
    """
    if not (actor.is_superuser or roles.has(actor, roles.POLICY_ADMIN)):
        raise DocketError("forbidden", "Only policy admins draft policy versions.", status=403)
    policy = Policy.objects.select_for_update(no_key=True).get(pk=version.policy_id)
    source = PolicyVersion.objects.get(pk=version.pk)
    last = policy.versions.order_by("-number").values_list("number", flat=True).first() or 0
    return PolicyVersion.objects.create(
        policy=policy,
        number=last + 1,
        text=source.text,
        rules=[dict(rule) for rule in source.rules],
        ladder=list(source.ladder),
        strike_weight=source.strike_weight,
    )


def policy_rules_validate(rules):
    """The problems of a rules list (``[{"code", "title", "description"}]``), as messages; empty when fine.

    Codes are what decisions cite: each is required, unique, and short
    (letters, digits, ``-``, ``_``, ``.``); a title is required.
    """
    problems = []
    seen = set()
    for i, rule in enumerate(rules, 1):
        code = (rule.get("code") or "").strip()
        if not code:
            problems.append(f"Rule {i}: a code is required.")
            continue
        if not RULE_CODE.fullmatch(code):
            problems.append(f"Rule {i}: the code {code!r} may use only letters, digits, '-', '_' and '.'.")
        if code in seen:
            problems.append(f"Rule {i}: the code {code!r} is used twice.")
        seen.add(code)
        if not (rule.get("title") or "").strip():
            problems.append(f"Rule {i} ({code}): a title is required.")
    return problems


# --- Thresholds ---------------------------------------------------------------


def _source_by_slug(slug):
    try:
        return SignalSource.objects.get(slug=slug)
    except SignalSource.DoesNotExist:
        raise DocketError("unknown_source", f"No registered source {slug!r}.") from None


def _threat_class_by_slug(slug):
    try:
        return ThreatClass.objects.get(slug=slug)
    except ThreatClass.DoesNotExist:
        raise DocketError("unknown_threat_class", f"No threat class {slug!r}.") from None


def _require_policy_admin(actor, detail="Only policy admins govern thresholds."):
    if not roles.has(actor, roles.POLICY_ADMIN):
        raise DocketError("forbidden", detail, status=403)


def _validate_values(*, auto_action_at, review_at, reason):
    errors = {}

    def in_unit(value):
        return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1

    if not in_unit(review_at):
        errors["review_at"] = ["Must be a number from 0 to 1."]
    if auto_action_at is not None:
        if not in_unit(auto_action_at):
            errors["auto_action_at"] = ["Must be a number from 0 to 1, or null (no automation)."]
        elif "review_at" not in errors and auto_action_at < review_at:
            errors["auto_action_at"] = ["Must not be below review_at."]
    if not (reason or "").strip():
        errors["reason"] = ["Say why the threshold should move."]
    if errors:
        raise DocketError("invalid", "The threshold change is invalid.", errors=errors)


def _threshold_values(threshold):
    if threshold is None:
        return DEFAULT_AUTO_ACTION_AT, DEFAULT_REVIEW_AT
    return threshold.auto_action_at, threshold.review_at


def blast_radius(*, source, threat_class, auto_action_at, review_at, now=None, window_days=BLAST_RADIUS_WINDOW_DAYS):
    """How the stored signals of the last ``window_days`` would be treated under new values.

    Compares each signal's disposition under the pair's current threshold with
    its disposition under (``auto_action_at``, ``review_at``), both from
    ``policies.thresholds.disposition_for`` with the source taken as healthy and
    no holdout draw (the holdout samples auto-actions, it does not move them).
    Dispositions depend on the score only through comparisons with the
    thresholds, so one aggregate query counts the signals at each threshold
    value and strictly between consecutive ones (FILTER clauses), and the rule
    is evaluated once per bucket. Returns ``window_days``, ``signals`` and the
    ``newly_auto_actioned`` / ``newly_queued`` / ``newly_dropped`` counts, plus
    ``before`` and ``after`` counts per disposition.
    """
    now = now or timezone.now()
    current = Threshold.objects.filter(source=source, threat_class=threat_class).first()
    old = _threshold_values(current)
    new = (auto_action_at, review_at)
    proposed = Threshold(source=source, threat_class=threat_class, auto_action_at=auto_action_at, review_at=review_at)

    points = sorted({0.0, 1.0, *(v for v in (*old, *new) if v is not None)})
    # (label, filter, representative score) for every bucket a score can fall in.
    buckets = [("null", Q(score__isnull=True), None)]
    for i, p in enumerate(points):
        buckets.append((f"at{i}", Q(score=p), p))
        if i + 1 < len(points):
            nxt = points[i + 1]
            buckets.append((f"in{i}", Q(score__gt=p, score__lt=nxt), (p + nxt) / 2))
    since = now - timedelta(days=window_days)
    counts = signals_since(source=source, threat_class=threat_class, since=since).aggregate(
        signals=Count("id"), **{label: Count("id", filter=q) for label, q, _ in buckets}
    )

    def disposition(score, threshold):
        return disposition_for(
            score=score,
            source_kind=source.kind,
            source_status="healthy",
            threshold=threshold,
            threat_class=threat_class,
            holdout_draw=1.0,
        )

    dispositions = ("queued", "auto_actioned", "held", "below_threshold")
    result = {
        "window_days": window_days,
        "signals": counts["signals"],
        "newly_auto_actioned": 0,
        "newly_queued": 0,
        "newly_dropped": 0,
        "before": dict.fromkeys(dispositions, 0),
        "after": dict.fromkeys(dispositions, 0),
    }
    for label, _, score in buckets:
        n = counts[label]
        if not n:
            continue
        before, after = disposition(score, current), disposition(score, proposed)
        result["before"][before] += n
        result["after"][after] += n
        if before != after:
            key = {"auto_actioned": "newly_auto_actioned", "queued": "newly_queued", "below_threshold": "newly_dropped"}
            if after in key:
                result[key[after]] += n
    return result


@transaction.atomic
def threshold_change_propose(
    *, source_slug, threat_class_slug, auto_action_at, review_at, reason, actor
) -> ThresholdChange:
    """Propose new threshold values for a (source, threat class), with their blast radius.

    Nothing moves until a different policy admin approves. The proposal stores
    the values in force now (for the approver to compare, and for rollback).
    Raises ``unknown_source`` / ``unknown_threat_class`` (400), ``invalid``
    (400, with ``errors``) and ``forbidden`` (403) for a non-admin.
    """
    _require_policy_admin(actor)
    source = _source_by_slug(source_slug)
    threat_class = _threat_class_by_slug(threat_class_slug)
    if not ThreatClass.objects.visible_to(actor).filter(pk=threat_class.pk).exists():
        # The blast radius counts the class's signals: told only to those cleared for it.
        raise DocketError(
            "forbidden",
            f"Only policy admins cleared for {threat_class.name} propose its thresholds "
            "(the blast radius counts its signals).",
            status=403,
        )
    if isinstance(auto_action_at, int | float) and not isinstance(auto_action_at, bool):
        auto_action_at = float(auto_action_at)
    if isinstance(review_at, int | float) and not isinstance(review_at, bool):
        review_at = float(review_at)
    _validate_values(auto_action_at=auto_action_at, review_at=review_at, reason=reason)
    current = Threshold.objects.filter(source=source, threat_class=threat_class).first()
    radius = blast_radius(source=source, threat_class=threat_class, auto_action_at=auto_action_at, review_at=review_at)
    return ThresholdChange.objects.create(
        source=source,
        threat_class=threat_class,
        old_auto_action_at=current.auto_action_at if current else None,
        old_review_at=current.review_at if current else None,
        auto_action_at=auto_action_at,
        review_at=review_at,
        reason=reason.strip(),
        blast_radius=radius,
        proposed_by=actor,
    )


def _lock_change(change_id, actor):
    # A change of a class hidden from the actor answers like a missing one.
    try:
        return (
            ThresholdChange.objects.visible_to(actor)
            .select_for_update(no_key=True, of=("self",))
            .select_related("source")
            .get(pk=change_id)
        )
    except (ThresholdChange.DoesNotExist, ValueError, TypeError):
        raise DocketError("not_found", "No such threshold change.", status=404) from None


def _lock_pair(source_id, threat_class_id):
    # A transaction-scoped advisory lock serialises every write to one pair's
    # threshold, including the first one, when there is no row yet to lock.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [int(source_id), int(threat_class_id)])


@transaction.atomic
def threshold_change_approve(*, change_id, actor) -> ThresholdChange:
    """Apply a proposed change: a second policy admin approves, the threshold moves, atomically.

    Refuses the proposer (403 ``self_approval``), a non-admin (403
    ``forbidden``), a change no longer proposed (409 ``invalid_transition``)
    and a change whose threshold moved since it was proposed (409
    ``stale_proposal``: its blast radius no longer describes the move).
    """
    _require_policy_admin(actor)
    change = _lock_change(change_id, actor)
    if change.status != ThresholdChange.Status.PROPOSED:
        raise DocketError("invalid_transition", f"This change is already {change.status}.", status=409)
    if change.proposed_by_id == actor.pk:
        raise DocketError("self_approval", "A threshold change must be approved by another policy admin.", status=403)
    _lock_pair(change.source_id, change.threat_class_id)
    current = Threshold.objects.filter(source_id=change.source_id, threat_class_id=change.threat_class_id).first()
    in_force = (current.auto_action_at, current.review_at) if current else (None, None)
    if in_force != (change.old_auto_action_at, change.old_review_at):
        raise DocketError(
            "stale_proposal",
            "The threshold moved since this change was proposed; propose it again for a fresh blast radius.",
            status=409,
        )
    Threshold.objects.update_or_create(
        source_id=change.source_id,
        threat_class_id=change.threat_class_id,
        defaults={"auto_action_at": change.auto_action_at, "review_at": change.review_at},
    )
    change.status = ThresholdChange.Status.APPLIED
    change.approved_by = actor
    change.decided_at = timezone.now()
    change.save(update_fields=["status", "approved_by", "decided_at"])
    return change


@transaction.atomic
def threshold_change_reject(*, change_id, actor) -> ThresholdChange:
    """Withdraw (the proposer) or turn down (another admin) a proposed change; nothing moves."""
    _require_policy_admin(actor)
    change = _lock_change(change_id, actor)
    if change.status != ThresholdChange.Status.PROPOSED:
        raise DocketError("invalid_transition", f"This change is already {change.status}.", status=409)
    change.status = ThresholdChange.Status.REJECTED
    change.decided_at = timezone.now()
    change.save(update_fields=["status", "decided_at"])
    return change


def threshold_change_rollback_proposal(*, change_id, actor) -> ThresholdChange:
    """Propose putting back the values an applied change replaced (a new proposal, approved as any other)."""
    _require_policy_admin(actor)
    try:
        change = ThresholdChange.objects.visible_to(actor).select_related("source", "threat_class").get(pk=change_id)
    except (ThresholdChange.DoesNotExist, ValueError, TypeError):
        raise DocketError("not_found", "No such threshold change.", status=404) from None
    if change.status != ThresholdChange.Status.APPLIED:
        raise DocketError("invalid_transition", "Only an applied change can be rolled back.", status=409)
    review_at = DEFAULT_REVIEW_AT if change.old_review_at is None else change.old_review_at
    return threshold_change_propose(
        source_slug=change.source.slug,
        threat_class_slug=change.threat_class.slug,
        auto_action_at=change.old_auto_action_at,
        review_at=review_at,
        reason=f"Rollback of threshold change {change.pk}.",
        actor=actor,
    )
