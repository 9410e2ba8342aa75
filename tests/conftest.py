import pytest
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

# The slow tier: what starts processes or browsers, runs for minutes (chaos, the API fuzz,
# the evidence loop's statistics over many simulated runs)
# or commits for real (threads racing on PostgreSQL, live servers). Everything else is the
# fast tier, run under pytest-xdist.
SLOW_MARKERS = ("browser", "celery_worker", "chaos", "fuzz", "statistics")
SLOW_FIXTURES = ("transactional_db", "live_server")


def pytest_addoption(parser):
    parser.addoption("--tier", choices=("fast", "slow", "all"), default="all",
                     help="run only the fast tier (xdist-safe), only the slow one, or all")


def is_slow(item) -> bool:
    database = item.get_closest_marker("django_db")
    return (any(item.get_closest_marker(name) for name in SLOW_MARKERS)
            or bool(database and database.kwargs.get("transaction"))
            or any(name in item.fixturenames for name in SLOW_FIXTURES))


def pytest_collection_modifyitems(config, items):
    """Mark the slow tier and select ``--tier``; tests marked ``postgres`` need PostgreSQL:
    on SQLite they are skipped, not faked."""
    from django.conf import settings

    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
    tier = config.getoption("--tier")
    if tier != "all":
        keep = [item for item in items if is_slow(item) == (tier == "slow")]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def process_isolation(request, tmp_path_factory):
    """What the test processes of one run would otherwise share: each has its own cache
    keys in Redis (``tests.cache``), its own directory of source documents, and an
    existing, empty ``STATIC_ROOT`` so that WhiteNoise does not warn about a missing
    ``collectstatic`` output in every request (the pages' files come from ``static/``
    through the finders, as in the demo)."""
    from django.conf import settings

    # pytest-xdist names its processes gw0, gw1...; without it there is one process.
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    overrides = {"STATIC_ROOT": str(tmp_path_factory.mktemp("staticfiles")),
                 # Source documents a test stores go to its own directory, not var/.
                 "STORAGES": {**settings.STORAGES, "documents": {
                     "BACKEND": "django.core.files.storage.FileSystemStorage",
                     "OPTIONS": {"location": str(tmp_path_factory.mktemp("documents")),
                                 "base_url": None}}}}
    default = settings.CACHES["default"]
    if default["BACKEND"] == "workflows.cache.ClientKeepingRedisCache":
        overrides["CACHES"] = {"default": {
            **default, "BACKEND": "tests.cache.ProcessRedisCache",
            "KEY_PREFIX": f"tests-{worker}"}}
    with override_settings(**overrides):
        yield


@pytest.fixture(scope="session", autouse=True)
def sqlite_flush_past_triggers():
    """A transactional test ends by flushing every table. PostgreSQL's TRUNCATE fires no
    row triggers; SQLite's DELETE FROM would meet the audit tables' append-only triggers
    (migration 0002), so the flush lifts the triggers and puts them back in its transaction.
    """
    if connection.vendor != "sqlite":
        yield
        return
    operations = type(connection.ops)
    flush = operations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with transaction.atomic(using=self.connection.alias), \
                self.connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
            flush(self, sql_list)
            for _, sql in triggers:
                cursor.execute(sql)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The factories hash every person's password; PBKDF2 would cost ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def invoice_policy(db):
    """An assist-stage invoice use case with one rule of each action."""
    from tests.exceptions_app.factories import PolicyVersionFactory, RuleFactory, UseCaseFactory

    policy = PolicyVersionFactory(use_case=UseCaseFactory(slug="invoice-approval",
                                                          name="Invoice approval"))
    RuleFactory(policy=policy, position=1, name="huge-amount",
                description="Over 50,000: rejected, these go through procurement",
                expression="output.amount > 50000.0", action="reject")
    RuleFactory(policy=policy, position=2, name="low-confidence",
                description="Confidence under 0.9: a person checks the extraction",
                expression="confidence < 0.9", action="review", priority=70)
    RuleFactory(policy=policy, position=3, name="matches-po",
                description="Matches its PO within 2%: approved",
                expression="output.amount <= input.po_amount * 1.02", action="auto")
    return policy


@pytest.fixture
def ai_client(invoice_policy):
    """An API client authenticated as an AI system allowed to post invoices."""
    from tests.exceptions_app.factories import AiSystemFactory, issue_key

    system = AiSystemFactory(slug="invoice-bot", use_cases=[invoice_policy.use_case])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(system)}")
    client.ai_system = system
    return client


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def every_emitted_audit_verb_has_wording(monkeypatch):
    """Whatever a test does, each audit event it writes carries a verb of the vocabulary
    (``workflows.verbs``), so the case timeline has words for everything emitted."""
    from workflows import verbs
    from workflows.services import audit

    emitted = set()

    def spying_on(write):
        def spy(*args, **kwargs):
            emitted.add(str(kwargs.get("verb")))
            return write(*args, **kwargs)
        return spy

    monkeypatch.setattr(audit, "build", spying_on(audit.build))
    monkeypatch.setattr(audit, "row", spying_on(audit.row))
    yield
    unknown = emitted - set(verbs.known())
    assert not unknown, f"audit verbs with no wording in workflows.verbs: {sorted(unknown)}"


@pytest.fixture(autouse=True)
def failed_sign_ins_start_at_zero(monkeypatch):
    """Each test counts failed sign-ins and bad API keys in a namespace of its own
    (``workflows.sign_in_throttle``): the cache outlives a test, and refusals from one
    test must not pile up into another's throttle."""
    import uuid

    from workflows import sign_in_throttle

    monkeypatch.setattr(sign_in_throttle, "KEY_PREFIX", f"sign-in-failures-{uuid.uuid4().hex}")
