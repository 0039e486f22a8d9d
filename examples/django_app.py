"""A one-file Django project under ASGI, with request metrics labeled by Django's routes.

python examples/django_app.py              # serve on http://127.0.0.1:8080 (uvicorn)
python examples/django_app.py --port 9000  # or on another port

Then: curl http://127.0.0.1:8080/items/1/ ; curl http://127.0.0.1:8080/metrics
(route="/items/<int:item_id>/", and route="<unmatched>" for a path no URL pattern matches).
In a real project, the settings go to settings.py and the last lines to asgi.py.
"""

from __future__ import annotations

import argparse

import django
import uvicorn
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from apytheus import PROMETHEUS_CONTENT_TYPE, agenerate_metrics
from apytheus.middleware import MetricsMiddleware

settings.configure(
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="example-only",
    MIDDLEWARE=[
        # first: it leaves each request's route in the ASGI scope for MetricsMiddleware
        "apytheus.django.RouteMiddleware",
        "django.middleware.common.CommonMiddleware",
    ],
)
django.setup()


async def item(request: HttpRequest, item_id: int) -> JsonResponse:
    return JsonResponse({"item_id": item_id})


async def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(await agenerate_metrics(), content_type=PROMETHEUS_CONTENT_TYPE)


urlpatterns = [path("items/<int:item_id>/", item), path("metrics", metrics)]

# asgi.py: the middleware wraps Django's ASGI application
from django.core.asgi import get_asgi_application  # noqa: E402  (after settings)

application = MetricsMiddleware(get_asgi_application())

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    uvicorn.run(application, host="127.0.0.1", port=parser.parse_args().port)
