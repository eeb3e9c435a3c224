""" "Why it ranks here": the deciding factors in words, then every factor with its meaning."""

import pytest

from casework.priority import FACTORS, case_reprioritise, priority_explain
from tests.factories import CaseFactory

BASE = {
    "severity": 2,
    "harm_weight": 1.0,
    "reach": 0.2,
    "signal_strength": 0.9,
    "reporter_weight": 0.0,
    "reporter_term": 0.0,
    "brigading": False,
    "evidence": 1.0,
    "velocity": 0,
    "velocity_growth": 1.0,
    "velocity_factor": 1.0,
    "aging_factor": 1.0,
    "sla_breached": False,
    "base": 8.0,
    "breach_offset": 0,
    "restricted_offset": 0,
}


def test_an_ordinary_case_names_class_and_evidence():
    why = priority_explain(BASE)
    assert why["reasons"] == [
        "Its class is severity 2 of 5 with harm weight 1.",
        "Evidence multiplies it by 2.0, mostly from a strong signal.",
    ]


def test_tiers_come_first_and_at_most_three_reasons():
    why = priority_explain({**BASE, "restricted_offset": 1e6, "sla_breached": True, "breach_offset": 1e5})
    assert why["reasons"][:2] == [
        "Restricted or legal class: it ranks above every unrestricted case in its queue.",
        "Past its SLA: it ranks above every case of its class that is still within SLA.",
    ]
    assert len(why["reasons"]) == 3


def test_rising_activity_and_brigades_are_named():
    why = priority_explain({**BASE, "velocity": 40, "velocity_factor": 1.45, "brigading": True, "severity": 1})
    assert any(r.startswith("Activity is rising: 40 signal(s)") for r in why["reasons"])
    assert why["reasons"][-1].startswith("It looks like a brigade")


def test_details_label_every_factor_in_words():
    why = priority_explain(BASE)
    labels = {d["key"]: (d["label"], d["value"]) for d in why["details"]}
    assert labels["signal_strength"] == ("Signal strength", "0.9")
    assert labels["sla_breached"] == ("Past its SLA", "no")
    assert all("_" not in d["label"] for d in why["details"])


@pytest.mark.django_db
def test_a_stored_breakdown_explains():
    case = CaseFactory(kind="harassment")
    case_reprioritise(case_ids=[case.pk])
    case.refresh_from_db()
    why = priority_explain(case.priority_breakdown)
    assert 1 <= len(why["reasons"]) <= 3
    assert why["reasons"][0] == "Its class is severity 3 of 5 with harm weight 4." or len(why["reasons"]) > 1
    assert {d["key"] for d in why["details"]} == set(case.priority_breakdown) & set(FACTORS)


def test_no_breakdown_is_no_explanation():
    assert priority_explain(None) == {"reasons": [], "details": []}
    assert priority_explain({}) == {"reasons": [], "details": []}
