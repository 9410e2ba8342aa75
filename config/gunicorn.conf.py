"""gunicorn's settings for production (``gunicorn -c config/gunicorn.conf.py
config.wsgi:application``), each from the environment; docs/DEPLOY.md explains them.
Command-line flags given after ``-c`` still win."""

import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Synchronous workers: each request is short database work. About 2 per core; each
# holds one PostgreSQL connection (CONN_MAX_AGE keeps it between requests).
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# A request past this is killed and its worker replaced: the API's largest batch takes
# well under a second; a minute means something hangs.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Behind a load balancer that keeps connections open: longer than its idle timeout.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# Workers are replaced now and then (jittered, so not all at once): bounds any slow leak.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = max_requests // 10
accesslog = "-"
# gunicorn's default line, then the request id the app answered with (workflows/
# request_ids.py): an access line and the app's log lines of one request share it.
access_log_format = ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
                     'request=%({x-request-id}o)s')
control_socket_disable = True  # no control socket file in the working directory

if os.environ.get("LOG_FORMAT", "text") == "json":
    # gunicorn's own lines (start-up, worker timeouts, the access log) as JSON too.
    # gunicorn lays this over its own defaults key by key: the root logger comes too.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.json_logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                                 "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
