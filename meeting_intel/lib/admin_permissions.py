"""Admin actions that say why they were refused.

Django hides an action whose ``@admin.action(permissions=[...])`` the user
lacks, and a hand-posted one then fails with a bare "No action selected".
``ExplainedActionsMixin`` answers such a post with the permission it needs and
"nothing was changed", and gives each ``has_<name>_permission`` method a
one-line body through ``has_model_permission``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import model_format_dict
from django.contrib.auth.models import Permission
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect


def permission_label(app_label: str, codename: str) -> str:
    """The permission's name as admin shows it, e.g. "Can cancel jobs"."""
    found = Permission.objects.filter(
        content_type__app_label=app_label, codename=codename
    ).values_list("name", flat=True)
    return next(iter(found), f"{app_label}.{codename}")


def refusal(label: str, what: str) -> str:
    return (
        f"Your account may not {what}: it needs the permission “{label}”. "
        "Nothing was changed; ask an administrator to grant it."
    )


class ExplainedActionsMixin:
    """For ModelAdmin: explains refused actions; `permission_codenames` maps each
    `has_<name>_permission` to the codename it checks (on this model's app)."""

    permission_codenames: dict[str, str] = {}

    def has_model_permission(self, request: HttpRequest, name: str) -> bool:
        opts = self.model._meta  # type: ignore[attr-defined]
        return request.user.has_perm(f"{opts.app_label}.{self.permission_codenames[name]}")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Django runs an action only when the user is offered some; a posted
        # action it hides would otherwise end in a bare "No action selected".
        if request.method == "POST" and "action" in request.POST:
            refused = self._refuse_hidden_action(request)
            if refused is not None:
                return refused
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def _refuse_hidden_action(self, request: HttpRequest) -> HttpResponse | None:
        names = request.POST.getlist("action")
        try:
            name = names[int(request.POST.get("index", 0))]
        except (IndexError, ValueError):
            return None
        if not name or name in self.get_actions(request):  # type: ignore[attr-defined]
            return None
        action = self.get_action(name)  # type: ignore[attr-defined]
        wanted = getattr(action[0], "allowed_permissions", ()) if action else ()
        if not wanted:
            return None
        opts = self.model._meta  # type: ignore[attr-defined]
        labels = [
            permission_label(
                opts.app_label, self.permission_codenames.get(p, f"{p}_{opts.model_name}")
            )
            for p in wanted
        ]
        self.message_user(  # type: ignore[attr-defined]
            request, refusal(" or ".join(labels), _what(action[2], opts)), messages.ERROR
        )
        return HttpResponseRedirect(request.get_full_path())


def _what(description: object, opts: Any) -> str:
    text = str(description) % model_format_dict(opts)
    return text[:1].lower() + text[1:]
