"""Every page names its icon, and /favicon.ico (what browsers ask for on their own) leads
to it: no 404 on a first visit."""

import pytest


@pytest.mark.django_db
def test_pages_link_the_icon_and_favicon_ico_leads_to_it(client):
    login = client.get("/accounts/login/").content.decode()
    icon = client.get("/favicon.ico")

    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login
    assert (icon.status_code, icon["Location"]) == (301, "/static/favicon.svg")
    served = client.get("/favicon.ico", follow=True)
    served.close()  # the file it streams
    assert served.status_code == 200
    assert served["Content-Type"] == "image/svg+xml"
