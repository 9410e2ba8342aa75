import pytest
from django.urls import reverse

from tests.factories import make_case
from workflows.models import CaseState
from workflows.views_cases import APPROVALS_PAGE_SIZE


def shown(page: str, cases) -> list[int]:
    """The priorities of the cases the page lists, in its order."""
    places = {page.find(f'href="{reverse("case", args=[case.pk])}"'): case for case in cases}
    return [case.priority for place, case in sorted(places.items()) if place >= 0]


@pytest.mark.django_db
def test_approvals_come_a_page_at_a_time_most_urgent_first(client, queue, member,
                                                              second_member):
    cases = [make_case(queue, state=CaseState.PENDING_APPROVAL, first_reviewer=member,
                       four_eyes=True, priority=priority)
             for priority in range(APPROVALS_PAGE_SIZE + 1)]
    client.force_login(second_member)

    first = client.get(reverse("approvals")).content.decode()
    second = client.get(reverse("approvals"), {"page": 2}).content.decode()

    assert shown(first, cases) == list(range(APPROVALS_PAGE_SIZE, 0, -1))
    assert "Page 1 of 2" in first
    assert '<a class="button button--small" href="?page=2">Less urgent</a>' in first
    assert shown(second, cases) == [0]
    assert '<a class="button button--small" href="?page=1">More urgent</a>' in second


@pytest.mark.django_db
def test_one_page_of_approvals_shows_no_page_links(client, queue, member, second_member):
    make_case(queue, state=CaseState.PENDING_APPROVAL, first_reviewer=member, four_eyes=True)
    client.force_login(second_member)

    page = client.get(reverse("approvals")).content.decode()

    assert 'aria-label="Pages"' not in page
