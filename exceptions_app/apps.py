from django.apps import AppConfig


class ExceptionsAppConfig(AppConfig):
    name = "exceptions_app"
    verbose_name = "AI exceptions"
