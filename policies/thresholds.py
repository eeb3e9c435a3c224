"""The threshold rule: what intake does with one signal, given its source's threshold for the class.

Pure: intake (``casework.intake``) applies it to every signal it stores, and a
threshold change's blast radius (``policies.services.blast_radius``) applies it
to the signals of the last days under the old and the proposed values.
"""

from docket.conf import setting

# A signal's dispositions (the values of ``casework.Signal.Disposition``).
QUEUED = "queued"
AUTO_ACTIONED = "auto_actioned"
HELD = "held"
BELOW_THRESHOLD = "below_threshold"
# A source in one of these statuses (``policies.SignalSource.Status``) has its signals held out of the queue.
HOLDING_STATUSES = ("suspect", "quarantined")


def signal_disposition(*, score, source_kind, source_status, threshold, threat_class, holdout_draw):
    """``(disposition, holdout)``: the rule behind ``disposition_for``, with whether the holdout drew it."""
    if source_status in HOLDING_STATUSES:
        return HELD, False
    if score is None:
        # Unscored kinds (user reports, trusted flaggers, legal requests) always reach a human.
        return QUEUED, False
    review_at = threshold.review_at if threshold is not None else 0.0
    auto_at = threshold.auto_action_at if threshold is not None else None
    if score < review_at:
        return BELOW_THRESHOLD, False
    automatable = threat_class.automation != "none" and bool(threat_class.auto_action)
    if auto_at is not None and score >= auto_at and automatable:
        if holdout_draw is not None and holdout_draw < setting("HOLDOUT_RATE"):
            return QUEUED, True
        return AUTO_ACTIONED, False
    return QUEUED, False


def disposition_for(*, score, source_kind, source_status, threshold, threat_class, holdout_draw) -> str:
    """What intake does with one signal: ``queued``, ``auto_actioned``, ``held`` or ``below_threshold``.

    Pure. ``threshold`` is the source's ``Threshold`` for the class (or any object
    with ``review_at`` and ``auto_action_at``), ``None`` meaning review from 0 and
    no automation. A suspect or quarantined source's signals are held. A signal
    without a score (unscored source kinds) is queued. At or above
    ``auto_action_at`` automation acts when the class allows it
    (``automation != "none"`` and an ``auto_action``), except for the holdout:
    when ``holdout_draw`` (uniform in [0, 1), ``None`` for no draw) falls under
    ``DOCKET["HOLDOUT_RATE"]`` the signal is queued for a human instead.
    """
    return signal_disposition(
        score=score,
        source_kind=source_kind,
        source_status=source_status,
        threshold=threshold,
        threat_class=threat_class,
        holdout_draw=holdout_draw,
    )[0]
