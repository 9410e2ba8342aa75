"""Who acts: a person (a user) or the system itself, said explicitly.

``actor=None`` used to mean "the system" and silently skipped permission checks, so a
view that forgot to pass its user ran with the system's rights. Now a service is told
``SYSTEM`` (the sweeper, escalation, lease expiry, the demo seed, a management
command) or a person; ``None`` is refused with ``TypeError``. Permission checks are
skipped for the explicit system actor only, and its audit events read as the system
(no user, ``actor_label`` "system" or the command's label).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SystemActor:
    """The system acting on its own account; ``label`` is what the audit trail shows."""

    label: str = "system"
    # Where code asks a person's questions, the system is nobody's account.
    pk = None
    is_authenticated = False
    is_active = True
    is_superuser = False

    def get_username(self) -> str:
        return self.label

    def has_perm(self, perm, obj=None) -> bool:
        # Never through a person's permission check: the services test ``is_system``.
        return False


SYSTEM = SystemActor()


def is_system(actor) -> bool:
    return isinstance(actor, SystemActor)


def require(actor) -> None:
    """Refuse a missing actor: the caller must say who acts (a person, or ``SYSTEM``)."""
    if actor is None:
        raise TypeError("actor is required: pass the person acting, or "
                        "workflows.actors.SYSTEM when the system acts on its own.")


def person(actor):
    """The user to store where a row names who did it (``created_by``): None for the
    system."""
    require(actor)
    return None if is_system(actor) else actor
