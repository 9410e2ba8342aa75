"""A callback URL is saved only if a webhook may go there: https to a public address
(SSRF). The admin and the API save through ``ai_system_update``/``ai_system_create``."""

import socket

import pytest
from django.core.exceptions import ValidationError

from exceptions_app.services.use_cases import ai_system_update
from tests.exceptions_app.factories import AiSystemFactory
from tests.factories import make_manager

REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def dns(monkeypatch):
    """Names this test resolves itself: name -> address."""
    names = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return REAL_GETADDRINFO(names[host], port, *args, **kwargs)
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def product_defaults(settings):
    settings.ALLOW_HTTP_CALLBACKS = False
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False


def save(url):
    system = AiSystemFactory()
    return ai_system_update(ai_system=system, actor=make_manager(), callback_url=url)


@pytest.mark.django_db
@pytest.mark.usefixtures("product_defaults")
@pytest.mark.parametrize(("url", "why"), [
    ("http://hooks.example.com/backstop", "must use https"),
    ("ftp://hooks.example.com/backstop", "must use https, not ftp"),
    ("https://127.0.0.1:5432/", "loopback"),
    ("https://localhost:6379/", "names this machine"),
    ("https://app.localhost/", "names this machine"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://10.1.2.3/hook", "private"),
    ("https://192.168.0.10/hook", "private"),
    ("https://172.16.0.1/hook", "private"),
    ("https://169.254.10.10/hook", "link-local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[::ffff:10.0.0.1]/hook", "private"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://224.0.0.251/hook", "multicast"),
    ("https://240.0.0.1/hook", "reserved"),
    ("https://100.64.0.1/hook", "not a public address"),
])
def test_a_callback_url_a_webhook_may_not_reach_is_refused_at_save(url, why):
    with pytest.raises(ValidationError) as refused:
        save(url)

    [message] = refused.value.message_dict["callback_url"]
    assert why in message


@pytest.mark.django_db
@pytest.mark.usefixtures("product_defaults")
def test_a_name_resolving_to_this_machine_is_refused_at_save(dns):
    dns["hooks.rebind.test"] = "127.0.0.1"

    with pytest.raises(ValidationError) as refused:
        save("https://hooks.rebind.test/backstop")

    assert ("hooks.rebind.test resolves to 127.0.0.1, a loopback address"
            in refused.value.message_dict["callback_url"][0])


@pytest.mark.django_db
@pytest.mark.usefixtures("product_defaults")
def test_a_public_https_callback_url_is_saved(dns):
    dns["hooks.acme.test"] = "93.184.215.14"

    assert save("https://hooks.acme.test/backstop").callback_url == (
        "https://hooks.acme.test/backstop")


@pytest.mark.django_db
def test_plain_http_is_saved_where_the_setting_allows_it(settings, dns):
    settings.ALLOW_HTTP_CALLBACKS = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    dns["hooks.acme.test"] = "93.184.215.14"

    assert save("http://hooks.acme.test/backstop").callback_url.startswith("http://")


@pytest.mark.django_db
def test_the_admin_refuses_a_private_callback_url(client, product_defaults):
    manager = make_manager(is_staff=True, is_superuser=True)
    system = AiSystemFactory()
    client.force_login(manager)

    response = client.post(f"/admin/exceptions_app/aisystem/{system.pk}/change/", {
        "slug": system.slug, "name": system.name, "owner": system.owner.pk,
        "callback_url": "https://169.254.169.254/latest/meta-data/", "is_active": "on"})

    assert response.status_code == 200
    assert "metadata address" in response.content.decode()
    system.refresh_from_db()
    assert system.callback_url == ""
