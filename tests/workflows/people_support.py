"""The people of the case-lifecycle tests, as fixtures (imported by the conftest.py of
``tests/workflows`` and ``tests/integration``).

Three people, as every access test has them: a ``member`` of the queue, a
``manager`` (``workflows.manage_cases``) and an ``outsider`` who works another queue.
"""

import pytest

from tests.factories import QueueFactory, UserFactory, make_manager


@pytest.fixture
def queue(db):
    return QueueFactory(slug="invoices", name="Invoices", lease_seconds=600)


@pytest.fixture
def member(queue):
    user = UserFactory(username="member")
    queue.members.add(user)
    return user


@pytest.fixture
def second_member(queue):
    user = UserFactory(username="second")
    queue.members.add(user)
    return user


@pytest.fixture
def manager(db):
    return make_manager(username="manager")


@pytest.fixture
def outsider(db):
    user = UserFactory(username="outsider")
    QueueFactory(slug="elsewhere", name="Elsewhere").members.add(user)
    return user

