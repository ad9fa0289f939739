"""SPEC's error object for every API error: {"error": {"code", "message", "details"}}.

DRF errors, Django's 404s under /api/, oversized uploads and unexpected
exceptions all leave in this shape, and ``error_responses`` documents it in
the OpenAPI schema.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from meeting_intel.http.body_limits import BodyTooLarge, UploadTooLarge

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error with our own code, status and details."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = code
        self.details = details or {}
        self.retry_after = retry_after


_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    502: "provider_error",
    503: "provider_unavailable",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, UploadTooLarge):
        exc = ApiError(413, "file_too_large", str(exc), {"max_bytes": settings.UPLOAD_MAX_BYTES})
    elif isinstance(exc, BodyTooLarge):
        exc = ApiError(
            413, "body_too_large", str(exc), {"max_bytes": settings.REQUEST_BODY_MAX_BYTES}
        )
    elif isinstance(exc, RequestDataTooBig):
        exc = _data_too_big(context)
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = ApiError(400, "too_many_fields", "The form has too many fields or files.")
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            error_body("internal_error", "Something went wrong on our side."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, ApiError):
        code, message, details = exc.error_code, str(exc.detail), exc.details
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid_request", "The request is invalid.", exc.detail
    else:
        code = _CODES.get(response.status_code, "error")
        message = str(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
        details = {}
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.status_code = status.HTTP_401_UNAUTHORIZED
        code = "unauthenticated"
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(exc.wait or 1))
        response["Retry-After"] = str(wait)
        message = f"Too many requests; retry in {wait} s."
        details = {"retry_after": wait}
    if not isinstance(details, dict):
        details = {"errors": details}
    response.data = error_body(code, message, details)
    return response


def _data_too_big(context: dict[str, Any]) -> ApiError:
    """Django's own cap (DATA_UPLOAD_MAX_MEMORY_SIZE): a multipart text field, or a
    whole non-multipart body read through `request.body`."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    request = context.get("request")
    if (getattr(request, "content_type", "") or "").startswith("multipart/"):
        return ApiError(
            413,
            "field_too_large",
            f"A form field exceeds the limit of {limit} bytes.",
            {"max_bytes": limit},
        )
    message = f"The request body exceeds the limit of {limit} bytes."
    return ApiError(413, "body_too_large", message, {"max_bytes": limit})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: the error object under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("not_found", "No such resource."), status=status.HTTP_404_NOT_FOUND
        )
    return defaults.page_not_found(request, exception)


class ApiErrorPagesMiddleware:
    """Every error under /api/ leaves as the error object, whatever produced it.

    Django's handler404/handler500 only run when DEBUG is false; with DEBUG on
    (``make run``) an unmatched route or a crash outside DRF would answer an
    HTML debug page. This middleware replaces any non-JSON error response
    under /api/ with SPEC's object and the same status. It sits inside
    CommonMiddleware, so APPEND_SLASH redirects still happen first.
    """

    # Both modes, so an ASGI request makes no thread hop for it (pure CPU).
    sync_capable = async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return self._replace(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._replace(request, await self.get_response(request))

    @staticmethod
    def _replace(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            response.status_code >= 400
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status_code = response.status_code
            code = _CODES.get(status_code, "error")
            message = _MESSAGES.get(status_code, "The request failed.")
            replaced = JsonResponse(error_body(code, message), status=status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response


_MESSAGES = {
    404: "No such resource.",
    405: "This method is not allowed here.",
    500: "Something went wrong on our side.",
}


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: the error object under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("internal_error", "Something went wrong on our side."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)


# --- The schema's description of errors -----------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable, machine-readable error code.")
    message = serializers.CharField(help_text="A human-readable explanation.")
    details = serializers.DictField(
        help_text="More about the error, e.g. the invalid fields and why."
    )


class ErrorResponseSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


_DESCRIPTIONS = {
    400: "The request is malformed or a field is invalid (`details` lists the fields).",
    401: "No API key, or an invalid or revoked one.",
    404: "No such object for this client (another client's objects answer 404 too).",
    409: "The object's state does not allow this action, or a request with the same "
    "Idempotency-Key is still being processed.",
    413: "The body exceeds its route's cap: UPLOAD_MAX_BYTES for an upload, "
    "REQUEST_BODY_MAX_BYTES for anything else.",
    415: "The file is not a recognised audio or video format.",
    422: "Well-formed but unacceptable: an empty, truncated or undecodable file, an unsafe "
    "URL, a template the client does not have, or an Idempotency-Key reused with a "
    "different request.",
    429: "Too many requests for this client; see the Retry-After header (seconds).",
    502: "The embedding or language model provider refused the request.",
    503: "The embedding or language model provider is unavailable; see Retry-After (seconds).",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for these error statuses, plus 401 and 429 which every call can get."""
    wanted = sorted({401, 429, *statuses})
    return {
        code: OpenApiResponse(response=ErrorResponseSerializer, description=_DESCRIPTIONS[code])
        for code in wanted
    }


# Add to an operation's `parameters` so its 429 documents the header.
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before the next request.",
)


def refuse_blank_query(params: Any, names: Any, single: Any = ()) -> None:
    """400 for a query parameter of `names` given empty (`?status=`), or one of `single`
    given twice: DRF would skip the first as absent and take the last of the second,
    while the schema says neither is a value."""
    problems = {name: ["This field may not be blank."] for name in names if params.get(name) == ""}
    problems.update(
        {name: ["Give this parameter once."] for name in single if len(params.getlist(name)) > 1}
    )
    if problems:
        raise ApiError(400, "invalid_request", "The request is invalid.", problems)
