"""The API documentation (/api/v1/schema/, /docs/) is for signed-in people unless
API_DOCS_PUBLIC says otherwise: it maps every endpoint for whoever reads it. ReDoc is
gone (it fetched fonts and a logo from the internet); its address leads to /docs/."""

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

PAGES = ["/api/v1/docs/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_docs_pages_send_a_stranger_to_sign_in(client, url, settings):
    settings.API_DOCS_PUBLIC = False

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(f"/accounts/login/?next={url}")


@pytest.mark.django_db
def test_the_schema_is_refused_to_a_stranger(settings):
    settings.API_DOCS_PUBLIC = False

    response = APIClient().get("/api/v1/schema/", {"format": "json"})

    assert response.status_code in (401, 403)


@pytest.mark.django_db
@pytest.mark.parametrize("url", [*PAGES, "/api/v1/schema/"])
def test_a_signed_in_person_reads_the_docs(url, settings):
    settings.API_DOCS_PUBLIC = False
    client = APIClient()
    client.force_login(UserFactory())

    assert client.get(url).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", [*PAGES, "/api/v1/schema/"])
def test_public_docs_are_open_to_anyone_when_the_setting_says_so(client, url, settings):
    settings.API_DOCS_PUBLIC = True

    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_the_old_redoc_address_leads_to_the_swagger_docs(client):
    response = client.get("/api/v1/redoc/", follow=True)

    assert response.redirect_chain == [("/api/v1/docs/", 302)]
    assert response.status_code == 200
    assert b"redoc" not in response.content.lower()
