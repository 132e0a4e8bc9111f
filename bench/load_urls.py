"""The site's URLs plus `/bench/bare/`, used only by `bench/web_load.py` (via bench.load_settings).

The bare view is the floor of the load benchmark: a request through the same gunicorn workers and the
same middleware stack that touches neither the database nor the cache, so "cycles per bare request"
says how much of the server's capacity the annotator cycle itself costs."""
from django.http import HttpResponse
from django.urls import include, path


def bare(request):
    return HttpResponse(b"ok\n", content_type="text/plain")


urlpatterns = [
    path("bench/bare/", bare),
    path("", include("evalsite.urls")),
]
