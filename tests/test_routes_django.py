"""MetricsMiddleware on a real Django ASGI app: ``route`` is Django's URL route.

Django's ASGI handler runs on asyncio only (``asyncio.create_task``, asgiref's
thread executor), so these tests do too.
"""

from __future__ import annotations

from collections.abc import Callable

import django
import pytest
from asgiref.sync import SyncToAsync
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from route_checks import assert_scanner_collapsed, client, label_values, request_counts, scan

from apytheus import CollectorRegistry
from apytheus.middleware import UNMATCHED_ROUTE, MetricsMiddleware

# Django's ASGI handler uses asyncio's tasks and executor: it cannot run on trio
pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])


def item(request: HttpRequest, item_id: int) -> JsonResponse:  # a sync view: run in a thread
    return JsonResponse({"item_id": item_id})


async def user(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(name)


def archive(request: HttpRequest, year: str) -> HttpResponse:
    return HttpResponse(year)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("view failed")


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("home")


api = [path("users/<str:name>/", user), re_path(r"^archive/(?P<year>[0-9]{4})/$", archive)]
urlpatterns = [
    path("", home),
    path("items/<int:item_id>/", item),
    path("boom/", boom),
    path("api/v1/", include(api)),
]

if not settings.configured:  # once per process; this module is the URLconf
    settings.configure(
        ALLOWED_HOSTS=["test"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="only-for-tests",
        MIDDLEWARE=[
            "apytheus.django.RouteMiddleware",
            "django.middleware.common.CommonMiddleware",
        ],
        LOGGING_CONFIG=None,  # Django's default logging would print each 404 and 500
    )
    django.setup()


def sync_only(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """A middleware that is not async-capable: Django runs the chain up to it in a thread."""

    def middleware(request: HttpRequest) -> HttpResponse:
        return get_response(request)

    return middleware


def django_app(registry: CollectorRegistry) -> MetricsMiddleware:
    return MetricsMiddleware(ASGIHandler(), registry=registry)


async def test_requests_are_counted_under_djangos_route(registry: CollectorRegistry) -> None:
    async with client(django_app(registry)) as c:
        assert (await c.get("/")).text == "home"
        for i in range(5):
            assert (await c.get(f"/items/{i}/")).json() == {"item_id": i}
        for name in ("ann", "bob"):
            assert (await c.get(f"/api/v1/users/{name}/")).text == name
        assert (await c.get("/api/v1/archive/2024/")).text == "2024"
        assert (await c.get("/boom/")).status_code == 500
        assert (await c.get("/items/not-a-number/")).status_code == 404  # the converter refuses
        redirect = await c.get("/items/7")  # CommonMiddleware's APPEND_SLASH, on a 404
        assert redirect.status_code == 301
    assert request_counts(registry) == {
        ("GET", "/", "200"): 1.0,
        ("GET", "/items/<int:item_id>/", "200"): 5.0,
        ("GET", "/api/v1/users/<str:name>/", "200"): 2.0,
        ("GET", "/api/v1/archive/(?P<year>[0-9]{4})/$", "200"): 1.0,
        ("GET", "/boom/", "500"): 1.0,
        ("GET", UNMATCHED_ROUTE, "404"): 1.0,
        ("GET", UNMATCHED_ROUTE, "301"): 1.0,
    }
    raw = {"/items/3/", "/api/v1/users/ann/", "/api/v1/archive/2024/", "/items/7"}
    assert not raw & label_values(registry)


async def test_a_scanner_collapses_into_one_unmatched_route(registry: CollectorRegistry) -> None:
    async with client(django_app(registry)) as c:
        await scan(c)
    assert_scanner_collapsed(registry)


async def test_without_route_middleware_every_request_is_unmatched(
    registry: CollectorRegistry,
) -> None:
    """The route comes from RouteMiddleware alone: nothing else reads Django's match."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "MIDDLEWARE", ["django.middleware.common.CommonMiddleware"])
        app = django_app(registry)  # Django reads MIDDLEWARE when the handler is made
    async with client(app) as c:
        assert (await c.get("/items/1/")).status_code == 200
    assert request_counts(registry) == {("GET", UNMATCHED_ROUTE, "200"): 1.0}


async def test_route_middleware_works_in_a_sync_chain_too(registry: CollectorRegistry) -> None:
    """With a sync-only middleware after it, Django calls RouteMiddleware in sync mode."""
    chain = ["apytheus.django.RouteMiddleware", f"{__name__}.sync_only"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "MIDDLEWARE", chain)
        handler = ASGIHandler()
        app = MetricsMiddleware(handler, registry=registry)
    # the whole chain, RouteMiddleware first, is sync: Django wraps it for its async handler
    assert isinstance(handler._middleware_chain, SyncToAsync)
    async with client(app) as c:
        assert (await c.get("/items/1/")).status_code == 200
        assert (await c.get("/nope/")).status_code == 404
    assert request_counts(registry) == {
        ("GET", "/items/<int:item_id>/", "200"): 1.0,
        ("GET", UNMATCHED_ROUTE, "404"): 1.0,
    }
