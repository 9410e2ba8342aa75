import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# What start-up loaded lives as long as the process: kept out of the collector's full
# passes, which otherwise walk ~160,000 objects every few batches (docs/PERFORMANCE.md).
gc.freeze()
