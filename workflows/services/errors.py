class Conflict(Exception):
    """The action does not fit the object's current state (HTTP 409)."""


class CaseConflict(Conflict):
    """The case changed under the caller, or the action does not fit its state (HTTP 409)."""

    def __init__(self, message: str, *, case=None):
        super().__init__(message)
        self.case = case
