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
        client = ApiClient.objects.filter(key_hash=ApiClient.hash_key(key.strip())).first()
        if client is None or not client.is_active:
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


def client_of(request: Any) -> ApiClient:
    return request.user
