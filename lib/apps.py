from django.apps import AppConfig


class LibConfig(AppConfig):
    name = "lib"
    verbose_name = "Site infrastructure"
    default_auto_field = "django.db.models.BigAutoField"
