"""The bench-only baseline table (bench/baseline_settings.py installs this app).

Unmanaged: bench/intake.py creates the table in its own database.
"""

from django.db import models

BASELINE_TABLE = "bench_baseline_decision"


class BaselineDecision(models.Model):
    use_case = models.CharField(max_length=50)
    external_id = models.CharField(max_length=200, unique=True)
    model_version = models.CharField(max_length=200)
    confidence = models.FloatField()
    input = models.JSONField()
    output = models.JSONField()
    explanation = models.TextField(blank=True)
    meta = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "bench"
        managed = False
        db_table = BASELINE_TABLE

    def __str__(self):
        return self.external_id
