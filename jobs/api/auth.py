"""Bearer-key authentication and per-client throttling for CMS clients."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling
from rest_framework.request import Request

from jobs.models import ApiClient


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`; request.user becomes the ApiClient.

    A revoked key is refused exactly like an unknown one.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        client = active_client(key)
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return client, None

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes ApiKeyAuthentication in the OpenAPI schema as HTTP bearer auth."""

    target_class = "jobs.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API client's key, `Authorization: Bearer mip_…`. Create one with "
                "`python manage.py create_api_client NAME` or in Django admin."
            ),
        }


class ClientRateThrottle(throttling.SimpleRateThrottle):
    """API_THROTTLE_RATE requests per client, counted in the shared cache.

    The rate is read per request, so an operator's (or a test's) setting
    takes effect without a restart of the class.
    """

    scope = "client"

    def get_rate(self) -> str:
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        client = request.user
        if not isinstance(client, ApiClient):
            return None  # the 401 for a missing key comes first
        # The key's hash, not the row id: ids can be reused (SQLite, test
        # databases) while the cache keeps the old client's history.
        return self.cache_format % {"scope": self.scope, "ident": client.key_hash[:32]}


def active_client(key: str) -> ApiClient | None:
    """The unrevoked client holding `key`, or None."""
    client = ApiClient.objects.filter(key_hash=ApiClient.hash_key(key.strip())).first()
    return client if client is not None and client.is_active else None


def _active_key(authorization: str) -> bool:
    scheme, _, key = authorization.partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip()) and active_client(key) is not None


def _staff_may_add_jobs(cookie_header: str) -> bool:
    from http.cookies import SimpleCookie
    from importlib import import_module

    from django.contrib.auth import get_user_model

    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # a malformed Cookie header is no session
        return False
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)
    user_id = session.get("_auth_user_id")
    if user_id is None:
        return False
    user = get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).first()
    return user is not None and user.has_perm("jobs.add_job")


def may_upload(scope: Any) -> bool:
    """Before an upload's body is read: does it carry an active API key (API) or a
    staff session that may add jobs (admin)? A wrong answer here only means the
    body is refused early; the view checks again."""
    headers = {name: value.decode("latin-1") for name, value in scope.get("headers", [])}
    if scope.get("path", "").startswith("/api/"):
        return _active_key(headers.get(b"authorization", ""))
    return _staff_may_add_jobs(headers.get(b"cookie", ""))


async def upload_allowed(scope: Any) -> bool:
    from asgiref.sync import sync_to_async

    return await sync_to_async(may_upload, thread_sensitive=True)(scope)


def client_of(request: Any) -> ApiClient:
    return request.user
