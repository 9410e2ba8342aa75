class Conflict(Exception):
    """The action does not fit the object's current state (HTTP 409)."""


class CaseConflict(Conflict):
    """The case changed under the caller, or the action does not fit its state (HTTP 409)."""

    def __init__(self, message: str, *, case=None):
        super().__init__(message)
        self.case = case


class ReviewerAway(Conflict):
    """A person marked away tried to take a case (HTTP 409): away means no new work,
    pulled or pushed, until they mark themselves available."""

    def __init__(self, message: str, *, away_since=None):
        super().__init__(message)
        self.away_since = away_since
