from django.apps import AppConfig


class SeparabilityConfig(AppConfig):
    name = "separability"
    verbose_name = "Separability"
