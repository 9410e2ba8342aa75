"""Settings for the Celery worker and beat the clock tests start: the project's own,
read from the same environment, with e-mail kept in memory (the outbox relay "sends"
its notices without an SMTP server)."""

from config.settings import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The tests' webhook receivers listen on 127.0.0.1 over plain http.
ALLOW_HTTP_CALLBACKS = True
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
