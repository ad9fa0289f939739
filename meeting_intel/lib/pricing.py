"""The price table: what transcription and analysis cost, per provider and model.

Transcription is priced per hour of audio, analysis per million prompt and
completion tokens, search embeddings per million input tokens. The defaults
are the providers' published list prices for the models this platform uses
(AssemblyAI's default speech model with speaker labels; OpenAI's audio,
chat and embedding models); the offline providers cost nothing.
Contracts differ, so the setting `PRICE_TABLE` (JSON, same shape) replaces
entries of the defaults model by model, for example::

    PRICE_TABLE='{"analysis": {"openai": {"gpt-4o-mini":
        {"prompt_usd_per_1m": "0.15", "completion_usd_per_1m": "0.60"}}}}'

A model named "*" prices every model of its provider that has no entry of
its own. Amounts are computed in Decimal and rounded to 10⁻⁸ USD, so the
figures on a job add up exactly to its total.
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ImproperlyConfigured

PriceTable = dict[str, dict[str, dict[str, dict[str, Decimal]]]]

# Fields of an entry, by kind.
FIELDS = {
    "transcription": ("usd_per_hour",),
    "analysis": ("prompt_usd_per_1m", "completion_usd_per_1m"),
    "embedding": ("usd_per_1m",),
}

DEFAULT_PRICES: dict[str, Any] = {
    "transcription": {
        # The client names no speech model, so AssemblyAI uses its default one.
        "assemblyai": {"default": {"usd_per_hour": "0.37"}},
        "openai": {
            "whisper-1": {"usd_per_hour": "0.36"},
            "gpt-4o-transcribe": {"usd_per_hour": "0.36"},
            "gpt-4o-transcribe-diarize": {"usd_per_hour": "0.36"},
            "gpt-4o-mini-transcribe": {"usd_per_hour": "0.18"},
        },
        "local": {"*": {"usd_per_hour": "0"}},
    },
    "analysis": {
        "openai": {
            "gpt-4o-mini": {"prompt_usd_per_1m": "0.15", "completion_usd_per_1m": "0.60"},
            "gpt-4o": {"prompt_usd_per_1m": "2.50", "completion_usd_per_1m": "10.00"},
            "gpt-4.1": {"prompt_usd_per_1m": "2.00", "completion_usd_per_1m": "8.00"},
            "gpt-4.1-mini": {"prompt_usd_per_1m": "0.40", "completion_usd_per_1m": "1.60"},
            "gpt-4.1-nano": {"prompt_usd_per_1m": "0.10", "completion_usd_per_1m": "0.40"},
            "gpt-5": {"prompt_usd_per_1m": "1.25", "completion_usd_per_1m": "10.00"},
            "gpt-5-mini": {"prompt_usd_per_1m": "0.25", "completion_usd_per_1m": "2.00"},
            "gpt-5-nano": {"prompt_usd_per_1m": "0.05", "completion_usd_per_1m": "0.40"},
        },
        "local": {"*": {"prompt_usd_per_1m": "0", "completion_usd_per_1m": "0"}},
    },
    "embedding": {
        "openai": {
            "text-embedding-3-small": {"usd_per_1m": "0.02"},
            "text-embedding-3-large": {"usd_per_1m": "0.13"},
            "text-embedding-ada-002": {"usd_per_1m": "0.10"},
        },
        "local": {"*": {"usd_per_1m": "0"}},
    },
}

CENT_FRACTION = Decimal("0.00000001")
_HOUR = Decimal(3600)
_MILLION = Decimal(1_000_000)


class UnknownPrice(LookupError):
    """No entry for this provider and model (and no "*" entry for the provider)."""


def _price(setting: str, path: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ImproperlyConfigured(f"{setting}: {path} must be a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ImproperlyConfigured(f"{setting}: {path} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ImproperlyConfigured(f"{setting}: {path} must be a price of 0 or more, got {value!r}")
    return number


def build(overrides: Any, setting: str = "PRICE_TABLE") -> PriceTable:
    """The defaults with `overrides` laid over them, model by model; ImproperlyConfigured
    (naming `setting` and the faulty path) for anything that is not a valid table."""
    if not isinstance(overrides, dict):
        raise ImproperlyConfigured(f"{setting} must be a JSON object, got {overrides!r}")
    merged = copy.deepcopy(DEFAULT_PRICES)
    for kind, providers in overrides.items():
        if kind not in FIELDS:
            raise ImproperlyConfigured(
                f"{setting}: unknown section {kind!r} (use transcription, analysis or embedding)"
            )
        if not isinstance(providers, dict):
            raise ImproperlyConfigured(f"{setting}: {kind} must be an object of providers")
        for provider, models in providers.items():
            if not isinstance(models, dict):
                raise ImproperlyConfigured(
                    f"{setting}: {kind}.{provider} must be an object of models"
                )
            merged[kind].setdefault(provider, {}).update(models)
    table: PriceTable = {}
    for kind, providers in merged.items():
        for provider, models in providers.items():
            for model, entry in models.items():
                path = f"{kind}.{provider}.{model}"
                if not isinstance(entry, dict) or set(entry) != set(FIELDS[kind]):
                    raise ImproperlyConfigured(
                        f"{setting}: {path} must have exactly {', '.join(FIELDS[kind])}"
                    )
                table.setdefault(kind, {}).setdefault(provider, {})[model] = {
                    name: _price(setting, f"{path}.{name}", entry[name]) for name in FIELDS[kind]
                }
    return table


def entry(table: PriceTable, kind: str, provider: str, model: str) -> dict[str, Decimal]:
    models = table.get(kind, {}).get(provider, {})
    found = models.get(model) or models.get("*")
    if found is None:
        raise UnknownPrice(f"no {kind} price for {provider} model {model!r}")
    return found


def transcription_model(provider: str, openai_transcription_model: str) -> str:
    """The table's model name for what `provider` transcribes with."""
    if provider == "openai":
        return openai_transcription_model
    # The client names no speech model, so AssemblyAI uses its default one.
    return "default" if provider == "assemblyai" else "*"


def analysis_model(provider: str, openai_model: str) -> str:
    return openai_model if provider == "openai" else "*"


def embedding_provider(analysis_provider: str) -> str:
    """Who embeds for search: OpenAI with the openai analysis provider, else the offline model."""
    return "openai" if analysis_provider == "openai" else "local"


def embedding_model(analysis_provider: str, openai_embedding_model: str) -> tuple[str, str]:
    """The table's (provider, model) for search embeddings under this analysis provider."""
    provider = embedding_provider(analysis_provider)
    return provider, openai_embedding_model if provider == "openai" else "*"


def require(table: PriceTable, **configured: tuple[str, str]) -> None:
    """ImproperlyConfigured unless every configured (provider, model), by kind, has a price."""
    for kind, (provider, model) in configured.items():
        try:
            entry(table, kind, provider, model)
        except UnknownPrice:
            raise ImproperlyConfigured(
                f"PRICE_TABLE has no {kind} price for {provider} model {model!r}: add one"
            ) from None


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)


def transcription_usd(table: PriceTable, provider: str, model: str, seconds: float) -> Decimal:
    price = entry(table, "transcription", provider, model)["usd_per_hour"]
    return _round(Decimal(str(seconds)) * price / _HOUR)


def analysis_usd(
    table: PriceTable, provider: str, model: str, prompt_tokens: int, completion_tokens: int
) -> Decimal:
    prices = entry(table, "analysis", provider, model)
    return _round(
        (
            prompt_tokens * prices["prompt_usd_per_1m"]
            + completion_tokens * prices["completion_usd_per_1m"]
        )
        / _MILLION
    )


def embedding_usd(table: PriceTable, provider: str, model: str, tokens: int) -> Decimal:
    price = entry(table, "embedding", provider, model)["usd_per_1m"]
    return _round(tokens * price / _MILLION)
