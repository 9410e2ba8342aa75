"""The domain's RACI activities: registered through ``workflows.hooks``, they are rows of
every matrix after the engine's, under the values matrices already store."""

import pytest
from django.urls import reverse

from exceptions_app.activities import DomainActivity
from workflows.models import Activity, Process, activity_values
from workflows.services import raci

pytestmark = pytest.mark.django_db


def test_the_domains_activities_follow_the_engines_under_their_stored_values():
    assert activity_values() == [*Activity.values, "policy_change", "stage_change",
                                 "model_update"]
    assert DomainActivity.POLICY_CHANGE == "policy_change"


def test_the_matrix_page_shows_the_domains_rows(client, manager):
    process = Process.objects.create(slug="invoices", name="Invoices")
    client.force_login(manager)

    page = client.get(reverse("raci-matrix", args=[process.slug])).content.decode()

    assert page.index("Incident") < page.index("Policy change") < page.index("Model update")
    assert list(raci.matrix(process=process)) == activity_values()
