"""The embeddings behind semantic search: the bundled offline model computes the
published all-MiniLM-L6-v2 vectors, from the installed package alone."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from jobs.providers.local import embeddings
from tests.support.platform import ROOT

# sentence-transformers' README example for all-MiniLM-L6-v2.
SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
PUBLISHED = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])


def test_the_offline_model_reproduces_the_published_similarities():
    vectors = embeddings.model().embed(SENTENCES)
    assert vectors.shape == (3, embeddings.DIMENSIONS) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors @ vectors.T, PUBLISHED, atol=2e-3)


def test_batches_and_padding_do_not_change_a_vector():
    model = embeddings.model()
    alone = model.embed(["Short."])
    padded = model.embed(
        ["Short.", "A much longer sentence " * 20] + ["x"] * (embeddings.BATCH + 1)
    )
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)
    assert model.embed([]).shape == (0, embeddings.DIMENSIONS)


def test_long_text_is_truncated_to_the_models_window():
    model = embeddings.model()
    assert model.count_tokens(["word " * 1000]) == embeddings.MAX_TOKENS
    assert model.embed(["word " * 1000]).shape == (1, embeddings.DIMENSIONS)


def test_the_model_loads_from_the_installed_package_with_the_hub_offline(tmp_path):
    code = (
        "from jobs.providers.local import embeddings as e;"
        "import sys; d = e.model_dir();"
        "assert 'site-packages' in str(d), d;"
        "print(e.MiniLM(d).embed(['hello']).shape)"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 384)"
    assert not any(tmp_path.iterdir())  # nothing was fetched or cached
