from django.conf import settings

from config.celery import app


def test_every_periodic_task_beat_sends_is_one_the_worker_knows():
    app.loader.import_default_modules()

    unknown = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
               if entry["task"] not in app.tasks]

    assert unknown == []
