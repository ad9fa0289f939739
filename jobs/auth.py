"""Bearer-key authentication for CMS clients."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiClient


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`; request.user becomes the ApiClient."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        client = ApiClient.objects.filter(key_hash=ApiClient.hash_key(key.strip())).first()
        if client is None or not client.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return client, None

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


def client_of(request: Any) -> ApiClient:
    return request.user
