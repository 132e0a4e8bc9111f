"""Separability: similarity backends and the separability computation (pure Python/numpy/torch in
``engine``, ``similarity`` and ``rouge``; no Django, and nothing heavy is imported here), plus the
Django models and Celery tasks of the app that store and schedule it."""
