"""Settings for `bench/web_load.py`: the site's own settings (all env-driven, as deployed) with one
change, the URLconf, which adds the bare view the load benchmark measures as its floor."""
from evalsite.settings import *  # noqa: F401,F403 - the whole site configuration, unchanged

ROOT_URLCONF = "bench.load_urls"
