"""Investigation writes: a read of a subject's history is recorded in the access log."""

from docket.audit import access_log_add_many

from .selectors import SubjectHistory, subject_history


def subject_history_read(*, user, kind: str, external_id: str, hops: int = 1, via: str) -> SubjectHistory:
    """The subject's history for ``user`` (404 as ``subject_history``), logged as a view.

    One access-log row for the subject, and one per restricted case it shows.
    """
    history = subject_history(user=user, kind=kind, external_id=external_id, hops=hops)
    subject = history.subject
    objects = [("subject", f"{subject.kind}:{subject.external_id}", "")]
    objects += [("case", c.pk, c.threat_class.slug) for c in history.cases if c.threat_class.restricted]
    access_log_add_many(user=user, action="view", objects=objects, detail={"via": via})
    return history
