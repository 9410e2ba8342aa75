"""Every transition of the cases API with a valid body, and the state each leads to:
the transition matrix's columns (tests/workflows/test_transitions.py, and the AI system's
row in tests/integration/test_ai_system_on_cases.py)."""

from workflows.models import CaseState

S = CaseState

TRANSITIONS = {
    "claim": {},
    "release": {},
    "resolve": {"verdict": "accepted", "reason_code": "", "notes": ""},
    "request-info": {"reason": "Need the PO scan"},
    "resume": {},
    "escalate": {"reason": "Looks like fraud"},
    "approve": {},
    "send-back": {"comment": "Check the amount again"},
    "reassign": {"to_user": "member"},
    "cancel": {"reason": "Duplicate"},
}

TARGET = {"claim": S.ASSIGNED, "release": S.OPEN, "resolve": S.RESOLVED,
          "request-info": S.WAITING, "resume": S.ASSIGNED, "escalate": S.ESCALATED,
          "approve": S.RESOLVED, "send-back": S.ASSIGNED, "reassign": S.ASSIGNED,
          "cancel": S.CANCELLED}
