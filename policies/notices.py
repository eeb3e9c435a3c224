"""What the user is told: policy admins' message templates, rendered safely.

A ``MessageTemplate`` is Django template syntax written in the admin. It is
rendered by a bare engine that knows no loaders and no tag libraries, with
only the plain data the caller passes (dicts, strings, numbers: never model
instances, whose methods a template could call). A template that fails to
compile or render is logged and the built-in English text is used instead, so
a typo in the admin never stops a webhook or answers a 5xx.

Rendering is bounded: at most ``MAX_OUTPUT`` characters and
``MAX_RENDER_SECONDS`` per template, so nested loops over a long text cannot
tie up a web request or a delivery worker. Every tag and variable checks the
clock and counts what it writes; filters that widen their input (``ljust``,
``add``, ``join``, ...) are checked before they build anything. The admin
refuses a template that breaks the limits on sample data, with a clear error.

Nothing here imports the other apps: callers build the context.
"""

import copy
import functools
import logging
import re
import time
from contextvars import ContextVar

from django.template import Context, Engine, Library, Node, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import Lexer, TokenType

from docket.conf import setting

from .models import MessageTemplate

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"


def redress():
    """The ways to challenge a decision every notice names (``DOCKET["APPEAL_REDRESS"]``)."""
    return setting("APPEAL_REDRESS")


# The shipped texts: the data migration installs them (English and German),
# and the English ones are the last fallback when a template is missing or broken.
DEFAULTS = {
    ("report_outcome", "en"): {
        "subject": "The outcome of your report",
        "body": (
            "We reviewed the content or account you reported to us under our "
            '"{{ decision.policy }}" policy (version {{ decision.policy_version }}).\n\n'
            "{% if decision.violation %}We found a violation and took this action: {{ decision.action_label }}"
            "{% if decision.duration_days %} for {{ decision.duration_days }} days{% endif %}.\n"
            "{% if decision.explanation %}Why: {{ decision.explanation }}\n{% endif %}"
            "{% else %}We found no violation and took no action.\n{% endif %}"
            "{% if decision.automated %}This decision was taken by automated means.\n{% endif %}\n"
            "If you disagree, you can ask us to review this decision until {{ statement.appeal_until }}: "
            "{{ redress.appeal }}. You can also refer the dispute to {{ redress.out_of_court }}, "
            "or seek redress before {{ redress.judicial }}."
        ),
    },
    ("report_outcome", "de"): {
        "subject": "Das Ergebnis Ihrer Meldung",
        "body": (
            "Wir haben die von Ihnen gemeldeten Inhalte oder das gemeldete Konto nach unserer Richtlinie "
            '"{{ decision.policy }}" (Version {{ decision.policy_version }}) geprüft.\n\n'
            "{% if decision.violation %}Wir haben einen Verstoß festgestellt und Folgendes veranlasst: "
            "{{ decision.action_label }}"
            "{% if decision.duration_days %} für {{ decision.duration_days }} Tage{% endif %}.\n"
            "{% if decision.explanation %}Begründung: {{ decision.explanation }}\n{% endif %}"
            "{% else %}Wir haben keinen Verstoß festgestellt und nichts unternommen.\n{% endif %}"
            "{% if decision.automated %}Diese Entscheidung wurde automatisiert getroffen.\n{% endif %}\n"
            "Wenn Sie nicht einverstanden sind, können Sie bis {{ statement.appeal_until }} eine Überprüfung "
            "verlangen: {{ redress.appeal }}. Sie können sich auch an {{ redress.out_of_court }} wenden "
            "oder den Rechtsweg ({{ redress.judicial }}) beschreiten."
        ),
    },
    ("report_received", "en"): {
        "subject": "We received your report",
        "body": (
            "Thank you: we received your report and will review it. "
            "We will tell you what we decide and how you can challenge that decision."
        ),
    },
    ("report_received", "de"): {
        "subject": "Wir haben Ihre Meldung erhalten",
        "body": (
            "Danke: Wir haben Ihre Meldung erhalten und werden sie prüfen. "
            "Wir teilen Ihnen unsere Entscheidung mit und wie Sie sie anfechten können."
        ),
    },
    ("decision_notice", "en"): {
        "subject": "Our decision about your {{ decision.subject.kind }} {{ decision.subject.external_id }}",
        "body": (
            "We reviewed your {{ decision.subject.kind }} {{ decision.subject.external_id }} under our "
            '"{{ decision.policy }}" policy (version {{ decision.policy_version }}).\n\n'
            '{% if decision.action == "no_violation" %}We found no violation and took no action.'
            "{% else %}Decision: {{ decision.action_label }}"
            "{% if decision.duration_days %} for {{ decision.duration_days }} days{% endif %}.\n"
            "Rule: {{ decision.rule }}{% if decision.rule_title %} ({{ decision.rule_title }}){% endif %}."
            "{% endif %}\n"
            "{% if decision.automated %}This decision was taken by automated means.\n{% endif %}\n"
            "You can appeal this decision until {{ statement.appeal_until }}."
        ),
    },
    ("decision_notice", "de"): {
        "subject": "Unsere Entscheidung zu {{ decision.subject.external_id }}",
        "body": (
            "Wir haben {{ decision.subject.external_id }} nach unserer Richtlinie "
            '"{{ decision.policy }}" (Version {{ decision.policy_version }}) geprüft.\n\n'
            '{% if decision.action == "no_violation" %}Wir haben keinen Verstoß festgestellt und nichts unternommen.'
            "{% else %}Entscheidung: {{ decision.action_label }}"
            "{% if decision.duration_days %} für {{ decision.duration_days }} Tage{% endif %}.\n"
            "Regel: {{ decision.rule }}{% if decision.rule_title %} ({{ decision.rule_title }}){% endif %}."
            "{% endif %}\n"
            "{% if decision.automated %}Diese Entscheidung wurde automatisiert getroffen.\n{% endif %}\n"
            "Sie können bis {{ statement.appeal_until }} Beschwerde gegen diese Entscheidung einlegen."
        ),
    },
    ("appeal_outcome", "en"): {
        "subject": "The outcome of your appeal",
        "body": (
            "We reviewed your appeal against our decision of {{ decision.created_on }} "
            "({{ decision.action_label }}).\n\n"
            '{% if appeal.outcome == "upheld" %}Outcome: the decision stands.'
            '{% elif appeal.outcome == "overturned" %}Outcome: the decision is overturned and its effects are reversed.'
            "{% else %}Outcome: the decision is changed to: {{ appeal.new_action_label }}.{% endif %}\n"
            "Reasons: {{ appeal.rationale }}\n"
            'Policy: "{{ statement.policy.name }}" (version {{ statement.policy.version }})'
            "{% if statement.policy.rule %}, rule {{ statement.policy.rule }}{% endif %}.\n\n"
            "Your appeal was decided by a member of our staff who took no part in the original decision.\n"
            "If you disagree, you can refer the dispute to {{ redress.out_of_court }}, "
            "or seek redress before {{ redress.judicial }}."
        ),
    },
    ("appeal_outcome", "de"): {
        "subject": "Das Ergebnis Ihrer Beschwerde",
        "body": (
            "Wir haben Ihre Beschwerde gegen unsere Entscheidung vom {{ decision.created_on }} "
            "({{ decision.action_label }}) geprüft.\n\n"
            '{% if appeal.outcome == "upheld" %}Ergebnis: Die Entscheidung bleibt bestehen.'
            '{% elif appeal.outcome == "overturned" %}Ergebnis: Die Entscheidung wird aufgehoben und ihre Folgen '
            "rückgängig gemacht."
            "{% else %}Ergebnis: Die Entscheidung wird geändert in: {{ appeal.new_action_label }}.{% endif %}\n"
            "Begründung: {{ appeal.rationale }}\n"
            'Richtlinie: "{{ statement.policy.name }}" (Version {{ statement.policy.version }})'
            "{% if statement.policy.rule %}, Regel {{ statement.policy.rule }}{% endif %}.\n\n"
            "Über Ihre Beschwerde hat eine Mitarbeiterin oder ein Mitarbeiter entschieden, "
            "die oder der an der ursprünglichen Entscheidung nicht beteiligt war.\n"
            "Wenn Sie nicht einverstanden sind, können Sie sich an {{ redress.out_of_court }} wenden "
            "oder den Rechtsweg ({{ redress.judicial }}) beschreiten."
        ),
    },
}

MAX_OUTPUT = 20_000  # characters one template may write (a notice is a few paragraphs)
MAX_RENDER_SECONDS = 0.25
MAX_SOURCE = 20_000  # characters of template source the admin accepts


class RenderLimitExceeded(Exception):
    """A template wrote too much or took too long; the message says which, in the admin's words."""


class _Budget:
    def __init__(self):
        self.left = MAX_OUTPUT
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS

    def tick(self):
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"it takes longer than {MAX_RENDER_SECONDS} s to render")

    def spend(self, n):
        self.left -= n
        if self.left < 0:
            raise RenderLimitExceeded(f"it writes more than {MAX_OUTPUT:,} characters")


_BUDGET: ContextVar[_Budget | None] = ContextVar("notice_budget", default=None)


def _too_wide(n):
    if n > MAX_OUTPUT:
        raise RenderLimitExceeded(f"it writes more than {MAX_OUTPUT:,} characters")


def _int(arg, default=0):
    try:
        return abs(int(str(arg).rstrip("gu") or default))
    except (TypeError, ValueError):
        return default


def _length(value):
    try:
        return len(value)
    except TypeError:
        return len(str(value))


# Filters whose output can be much larger than their input, checked before they run.
_WIDENING = {
    "ljust": lambda value, arg: _too_wide(_int(arg)),
    "rjust": lambda value, arg: _too_wide(_int(arg)),
    "center": lambda value, arg: _too_wide(_int(arg)),
    "stringformat": lambda value, arg: _too_wide(max((int(d) for d in re.findall(r"\d+", str(arg))), default=0)),
    "floatformat": lambda value, arg=-1: _too_wide(_int(arg) * 100),  # digits after the point, x100 headroom
    "add": lambda value, arg: _too_wide(_length(value) + _length(arg)),
    "join": lambda value, arg: _too_wide(
        sum(len(str(v)) for v in value) + len(str(arg)) * _length(value) if hasattr(value, "__len__") else 0
    ),
}


def _bounded_filter(name, func):
    check = _WIDENING.get(name)

    @functools.wraps(func)
    def bounded(value, *args, **kwargs):
        if check is not None:
            check(value, *args)
        result = func(value, *args, **kwargs)
        if isinstance(result, str | list | tuple):
            _too_wide(len(result))
        return result

    return bounded


# A sandbox: no loaders and no include/extends (no files), no libraries to load, and
# none of the tags that reach beyond the context ({% debug %} prints sys.modules,
# {% url %} the site's routes) or write unbounded text ({% lorem 1000000 %}).
# Plain text out: the platform escapes for its medium.
_UNSAFE_TAGS = {"debug", "load", "url", "csrf_token", "lorem"}
_SANDBOX = Library()
_SANDBOX.tags.update({name: tag for name, tag in defaulttags.register.tags.items() if name not in _UNSAFE_TAGS})
_SANDBOX.filters.update({name: _bounded_filter(name, f) for name, f in defaultfilters.register.filters.items()})
_ENGINE = Engine(loaders=[], libraries={}, autoescape=False, debug=False)
_ENGINE.template_builtins = [_SANDBOX]

_BLANK_RUNS = re.compile(r"\n{3,}")


def language_chain(language):
    """``"de-AT"`` -> ``["de-at", "de", "en"]``: the languages tried, best first."""
    chain = []
    tag = (language or "").strip().lower().replace("_", "-")[:8]
    if tag:
        chain.append(tag)
        primary = tag.split("-", 1)[0]
        if primary and primary not in chain:
            chain.append(primary)
    if DEFAULT_LANGUAGE not in chain:
        chain.append(DEFAULT_LANGUAGE)
    return chain


def notice_templates(kinds) -> list:
    """Every admin template of these kinds, read once for a batch of ``notice_render(templates=...)`` calls."""
    return list(MessageTemplate.objects.filter(kind__in=list(kinds)))


def _pick(kind, language, action, templates=None):
    """The admin's template: language (full tag, then primary), then English; the action's, then any action's.

    ``templates``: the rows of ``notice_templates`` already read (the same choice, no query).
    """
    chain = language_chain(language)
    actions = {action or "", ""}
    if templates is None:
        rows = list(MessageTemplate.objects.filter(kind=kind, language__in=chain, action__in=actions))
    else:
        rows = [t for t in templates if t.kind == kind and t.language in chain and t.action in actions]
    best = {(row.language, row.action): row for row in rows}
    actions = [action, ""] if action else [""]
    for lang in chain:
        for act in actions:
            if (lang, act) in best:
                return best[(lang, act)]
    return None


def _bounded_node(node):
    """Make the node check the clock each time it renders and, if it writes text itself, count it."""
    render = node.render_annotated
    leaf = not any(getattr(node, attr, None) for attr in node.child_nodelists)

    def render_annotated(context):
        budget = _BUDGET.get()
        budget.tick()
        out = render(context)
        if leaf:
            budget.spend(len(out))
        return out

    node.render_annotated = render_annotated


@functools.lru_cache(maxsize=512)
def _compiled(source):
    """The template of a text, compiled and its nodes bounded once (a wave renders one text thousands of times;
    an edited template is another text). A template that does not compile raises each time, uncached."""
    template = _ENGINE.from_string(source)
    for node in template.nodelist.get_nodes_by_type(Node):
        _bounded_node(node)
    return template


def _render(source, context):
    template = _compiled(source)
    token = _BUDGET.set(_Budget())
    try:
        return template.render(Context(context, autoescape=False))
    finally:
        _BUDGET.reset(token)


def _tidy(body):
    lines = [line.rstrip() for line in body.strip().splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines))


def notice_render(*, kind, language, action="", context, templates=None):
    """``{"language", "subject", "body"}`` telling the user about a decision or an appeal outcome.

    Uses the policy admins' template for ``kind`` in the best matching
    language (falling back to English) and ``action`` (falling back to the
    any-action template), else the built-in English text. ``context`` must be
    plain data. A broken template is logged and replaced by the built-in
    English text; this function does not raise for template faults.
    ``templates``: the rows of ``notice_templates`` for a batch, read once.
    """
    template = _pick(kind, language, action, templates)
    if template is not None:
        source = {"language": template.language, "subject": template.subject, "body": template.body}
    else:
        source = {"language": DEFAULT_LANGUAGE, **DEFAULTS[(kind, DEFAULT_LANGUAGE)]}
    try:
        return _rendered(source, context)
    except Exception:
        # Any fault of an admin-written template (syntax, a filter that raises)
        # must not block what the user is told: fall back to the shipped English.
        log.exception("message template %s failed to render; using the default English text", template)
        return _rendered({"language": DEFAULT_LANGUAGE, **DEFAULTS[(kind, DEFAULT_LANGUAGE)]}, context)


def _rendered(source, context):
    return _finished(source, _render(source["subject"], context), _render(source["body"], context))


def _finished(source, subject, body):
    return {"language": source["language"], "subject": " ".join(subject.split())[:200], "body": _tidy(body)}


def notices_render(*, kind, requests, templates=None) -> list[dict]:
    """``notice_render`` for many notices of one kind (``requests``: ``(language, action, context)``), in order.

    The same texts as one ``notice_render`` each. A wave of decisions tells thousands of users much the
    same thing: where a template's notices differ only in plain text values it prints as they are
    (``{{ decision.subject.external_id }}``, never filtered, tested or looped over), the template is
    rendered once and each notice's values put in its place; any other template is rendered per notice.
    """
    if templates is None:
        templates = notice_templates([kind])
    out: list[dict | None] = [None] * len(requests)
    groups: dict[tuple, list[int]] = {}
    picked = {}
    for index, (language, action, _context) in enumerate(requests):
        if (language, action) not in picked:
            picked[(language, action)] = _pick(kind, language, action, templates)
        template = picked[(language, action)]
        if template is not None:
            key = (template.language, template.subject, template.body)
        else:
            key = (
                DEFAULT_LANGUAGE,
                DEFAULTS[(kind, DEFAULT_LANGUAGE)]["subject"],
                DEFAULTS[(kind, DEFAULT_LANGUAGE)]["body"],
            )
        groups.setdefault(key, []).append(index)
    for (language, subject, body), indexes in groups.items():
        source = {"language": language, "subject": subject, "body": body}
        for index, rendered in zip(indexes, _rendered_once(source, [requests[i][2] for i in indexes]), strict=True):
            out[index] = rendered
    for index, (language, action, context) in enumerate(requests):
        if out[index] is None:
            out[index] = notice_render(
                kind=kind, language=language, action=action, context=context, templates=templates
            )
    return out


# Tags whose output is their nodes' output as rendered (no filter over a block, no cycling state):
# a value printed inside them is printed as it is.
_PLAIN_TAGS = frozenset(
    {"if", "elif", "else", "endif", "for", "empty", "endfor", "with", "endwith", "comment", "endcomment"}
)
_NAME = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*")
_SLOT = re.compile("\x00([0-9]+)\x00")


def _leaves(context, prefix=()):
    """``{path: value}`` of a plain context's values that are not dicts (an empty dict is a value)."""
    found = {}
    for key, value in context.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            found.update(_leaves(value, path))
        else:
            found[path] = value
    return found


def _printed_as_is(source, varying) -> set | None:
    """Which of the ``varying`` paths the template prints as they are (bare ``{{ a.b }}``); None if it uses
    any of them (or what holds them) otherwise, or has a tag outside ``_PLAIN_TAGS``."""
    printed = set()
    for token in Lexer(source).tokenize():
        if token.token_type in (TokenType.TEXT, TokenType.COMMENT):
            continue
        contents = token.contents.strip()
        if token.token_type == TokenType.BLOCK and contents.split(" ", 1)[0] not in _PLAIN_TAGS:
            return None
        if token.token_type == TokenType.VAR and tuple(contents.split(".")) in varying and _NAME.fullmatch(contents):
            printed.add(tuple(contents.split(".")))
            continue
        for name in _NAME.findall(contents):
            path = tuple(name.split("."))
            if any(path[: len(v)] == v[: len(path)] for v in varying):
                return None
    return printed


def _rendered_once(source, contexts) -> list:
    """Each context's rendering of ``source`` from a single render, or None for those that need their own."""
    if len(contexts) < 2 or "\x00" in source["subject"] + source["body"]:
        return [None] * len(contexts)
    leaves = [_leaves(c) for c in contexts]
    first = leaves[0]
    if any(other.keys() != first.keys() for other in leaves[1:]):
        return [None] * len(contexts)
    varying = {
        path
        for path, value in first.items()
        if any(type(other[path]) is not type(value) or other[path] != value for other in leaves[1:])
    }
    printed = set()
    for text in (source["subject"], source["body"]):
        found = _printed_as_is(text, varying)
        if found is None:
            return [None] * len(contexts)
        printed |= found
    slots = sorted(printed)
    if any(type(row[path]) is not str or "\x00" in row[path] for row in leaves for path in slots):
        return [None] * len(contexts)
    # One render with a marker in place of each printed value, then each context's values put back.
    marked = copy.deepcopy(contexts[0])
    for n, path in enumerate(slots):
        holder = marked
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = f"\x00{n}\x00"
    try:
        subject, body = _render(source["subject"], marked), _render(source["body"], marked)
    except Exception:
        return [None] * len(contexts)  # each notice rendered on its own, failing (and logged) as it does
    pieces = [_SLOT.split(text) for text in (subject, body)]  # text, slot number, text, ...
    out = []
    for row in leaves:
        values = [row[path] for path in slots]
        texts = ["".join(values[int(p)] if i % 2 else p for i, p in enumerate(parts)) for parts in pieces]
        # The render's output budget, as a render of this context would count it.
        out.append(None if any(len(t) > MAX_OUTPUT for t in texts) else _finished(source, *texts))
    return out


# Plausible data of the largest size the callers pass, for checking a template in the admin.
SAMPLE_CONTEXT = {
    "decision": {
        "id": 1,
        "action": "suspend",
        "action_label": "Suspend",
        "rule": "SP-1",
        "rule_title": "Commercial spam",
        "duration_days": 14,
        "automated": False,
        "policy": "Spam",
        "policy_version": 3,
        "threat_class": "Spam",
        "created_on": "2026-01-31",
        "subject": {"kind": "account", "external_id": "u-1234567890"},
    },
    "appeal": {
        "id": 1,
        "outcome": "modified",
        "rationale": "The account sent the same link to many users within minutes. " * 30,
        "new_action": "warn",
        "new_action_label": "Warn",
        "resolved_on": "2026-02-02",
    },
    "statement": {
        "appeal_until": "2026-07-30",
        "appeal_window_days": 180,
        "policy": {"slug": "spam", "name": "Spam", "version": 3, "rule": "SP-1", "rule_title": "Commercial spam"},
        "reasons": "The account sent the same link to many users within minutes. " * 30,
        "redress": [
            {"kind": "out_of_court_settlement", "description": "a certified out-of-court dispute settlement body"},
            {"kind": "judicial_redress", "description": "the competent courts"},
        ],
    },
    "redress": {"out_of_court": "a certified out-of-court dispute settlement body", "judicial": "the competent courts"},
}


def template_check(*, subject: str, body: str) -> dict:
    """Why a template cannot be saved, per field (``{}`` when it can): too long, not valid template
    syntax, or over the render limits on ``SAMPLE_CONTEXT``."""
    errors = {}
    for field, source in (("subject", subject), ("body", body)):
        if len(source or "") > MAX_SOURCE:
            errors[field] = f"At most {MAX_SOURCE:,} characters."
            continue
        try:
            _render(source or "", SAMPLE_CONTEXT)
        except TemplateSyntaxError as e:
            errors[field] = f"Not a valid template: {e}"
        except RenderLimitExceeded as e:
            errors[field] = (
                f"This template is refused because {e} with sample data (nested loops over a long text, "
                "or a filter that pads or repeats). Simplify it."
            )
        except Exception as e:  # a filter refusing the sample data, for instance
            errors[field] = f"This template fails on sample data: {type(e).__name__}: {e}"
    return errors
