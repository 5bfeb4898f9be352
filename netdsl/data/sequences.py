"""Token sequences: the data of a network whose input is `input L int` (token ids for `embed V D`).

Token ids are kept as int32 from the file to the model: they are indices, never scaled as pixels are.
Sequences longer or shorter than the input are fitted as Keras's `pad_sequences` does (padding with
0 and truncating at the start, so the end of a text is kept). The built-in task `synthetic-seq` is a
deterministic, offline classification of key phrases hidden in random text (see `generate`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from netdsl.data import Dataset, data_error, parse_options

PAD = 0
"""The padding id (Keras's Embedding and IMDB's loader use 0 for it); synthetic words start at FIRST_WORD."""
FIRST_WORD = 3  # 1 and 2 are IMDB's start and out-of-vocabulary marks; synthetic text avoids them too
MAX_TOKEN = 2**31 - 1


def fit_length(rows: Sequence[Sequence[int]] | np.ndarray, length: int) -> np.ndarray:
    """Sequences as an int32 (N, length) array: shorter ones padded with 0 at the start, longer ones
    cut at the start (Keras's `pad_sequences` defaults, so the end of each text is kept)."""
    out = np.full((len(rows), length), PAD, np.int32)
    for i, row in enumerate(rows):
        kept = np.asarray(row, np.int64)[-length:]
        if len(kept):
            out[i, length - len(kept) :] = kept
    return out


def to_tokens(x: np.ndarray, key: str, where: str) -> np.ndarray:
    """Token ids as int32 (N x L): whole numbers from 0 up; floats holding whole numbers are accepted."""
    if x.ndim != 2 or 0 in x.shape[1:]:
        raise data_error("E504", f"{key} must hold token sequences (N x L), got shape {x.shape}", where)
    if not np.issubdtype(x.dtype, np.integer) and not np.issubdtype(x.dtype, np.floating):
        raise data_error("E504", f"{key} has dtype {x.dtype}; token ids are integers", where)
    if x.size == 0:
        return x.astype(np.int32)
    if np.issubdtype(x.dtype, np.floating) and (not np.all(np.isfinite(x)) or not np.all(np.mod(x, 1) == 0)):
        raise data_error("E504", f"{key} holds non-integer values; token ids are whole numbers", where)
    low, high = x.min(), x.max()
    if low < 0 or high > MAX_TOKEN:
        raise data_error(
            "E504", f"{key} holds token id {low if low < 0 else high}; ids run from 0 to {MAX_TOKEN}", where
        )
    return x.astype(np.int32)


def check_tokens(data: Dataset, vocabulary: int | None) -> None:
    """Every token id must index the embedding (0..V-1), else Keras fails mid-epoch on a CPU and
    silently embeds zeros on a GPU (E520, raised by the caller at the `embed` line)."""
    if vocabulary is None or not data.tokens:
        return
    for split, (x, _) in data.splits().items():
        if x.size and int(x.max()) >= vocabulary:
            raise data_error(
                "E520", f"x_{split} of {data.name} holds token id {int(x.max())}, outside the embedding's "
                f"vocabulary of {vocabulary:,} (ids 0..{vocabulary - 1})", data.name,
                help=f"raise V in `embed V D` to at least {int(x.max()) + 1}, or map rare words to one id",
            )  # fmt: skip


def adapt_tokens(data: Dataset, input_shape: tuple[int, ...]) -> Dataset:
    """The splits fitted to `input L int`'s length, with a note; E509 for an input that is not a sequence."""
    from dataclasses import replace

    if len(input_shape) != 1:
        raise data_error(
            "E509", f"{data.name} holds token sequences, but `input {'x'.join(map(str, input_shape))} int` is not "
            "one sequence of ids", data.name, help=f"use `input {data.image_shape[0]} int`",
        )  # fmt: skip
    length = input_shape[0]
    if data.image_shape == (length,):
        return data
    changed = {f"x_{split}": fit_length(x, length) for split, (x, _) in data.splits().items()}
    note = f"fitted {data.name}'s sequences of {data.image_shape[0]} tokens to {length} (padded or cut at the start)"
    return replace(data, **changed, notes=[*data.notes, note])


# ---------------------------------------------------------------- synthetic-seq

KEYWORDS = 12
"""Words that make up the key phrases; each class's phrase is an ordered triple of them, and the same
words also appear scattered as distractors, so which keywords a text holds tells its class only in part:
the three in a row, in order, tell it (a convolution of width 3 sees them, or a recurrent layer)."""
MAX_SEQUENCE_CLASSES = 20
MAX_SEQUENCES = 1_000_000
MAX_SEQUENCE_BYTES = 2 * 2**30


def phrases(classes: int, seed: int, vocabulary: int) -> tuple[np.ndarray, np.ndarray]:
    """(keyword ids (KEYWORDS,), one ordered triple of them per class (classes, 3)), from `seed`; each
    class's triple is a different word order (ids relative to FIRST_WORD)."""
    rng = np.random.default_rng([seed, 1])
    words = rng.choice(np.arange(min(KEYWORDS * 4, vocabulary - FIRST_WORD)), KEYWORDS, replace=False)
    triples: list[tuple[int, ...]] = []
    while len(triples) < classes:
        triple = tuple(int(i) for i in rng.choice(KEYWORDS, 3, replace=False))
        if triple not in triples:
            triples.append(triple)
    return words, np.asarray(triples)


def generate(
    count: int, length: int, vocabulary: int, classes: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`count` sequences (int32, N x length) and balanced labels: random words (ids FIRST_WORD..V-1), each
    text 1/2 to all of `length` long and padded with 0 at the start, with its class's key phrase (three
    keywords in that class's order) once at a random place and four keywords scattered as distractors."""
    rng = np.random.default_rng(seed)
    words, triples = phrases(classes, seed, vocabulary)
    keyword_ids = FIRST_WORD + words
    labels = rng.permutation(np.arange(count) % classes)
    x = rng.integers(FIRST_WORD, vocabulary, (count, length), dtype=np.int32)
    starts = length - rng.integers((length + 1) // 2, length + 1, count)  # where each text begins
    rows = np.arange(count)
    for _ in range(4):
        at = starts + (rng.random(count) * (length - starts)).astype(int)
        x[rows, at] = keyword_ids[rng.integers(0, KEYWORDS, count)]
    at = starts + (rng.random(count) * (length - starts - 2)).astype(int)
    for offset in range(3):
        x[rows, at + offset] = keyword_ids[triples[labels, offset]]
    x[np.arange(length)[None, :] < starts[:, None]] = PAD
    return x, labels.astype(np.int64)


def load_synthetic(
    options: str, input_shape: tuple[int, ...], vocabulary: int | None, classes_hint: int | None
) -> Dataset:
    """`synthetic-seq[:classes=N,count=N,seed=N]`: key-phrase classification as a Dataset of tokens.

    Defaults: 12,000 sequences (10,000 train, 2,000 test), seed 0, the input's length (200 when the input
    is not a sequence), the embedding's vocabulary (capped at 20,000; 1,000 without one), as many classes
    as the head has."""
    where = f"synthetic-seq:{options}" if options else "synthetic-seq"
    values = parse_options(
        options,
        ("classes", "count", "seed"),
        where,
        "options: classes=N, count=N, seed=N, e.g. synthetic-seq:classes=4",
    )
    try:
        classes = int(values.get("classes", min(classes_hint or 2, MAX_SEQUENCE_CLASSES)))
        count, seed = int(values.get("count", 12_000)), int(values.get("seed", 0))
    except ValueError as err:
        raise data_error("E501", f"synthetic-seq: bad option value ({err})", where) from None
    length = input_shape[0] if len(input_shape) == 1 else 200
    words = min(vocabulary or 1000, 20_000)
    if not 2 <= classes <= MAX_SEQUENCE_CLASSES or not 2 * classes <= count <= MAX_SEQUENCES:
        raise data_error(
            "E501", f"synthetic-seq: needs 2 to {MAX_SEQUENCE_CLASSES} classes and 2 sequences per class to "
            f"{MAX_SEQUENCES:,} sequences, got classes={classes}, count={count}", where,
        )  # fmt: skip
    if count * length * 4 > MAX_SEQUENCE_BYTES or not 0 <= seed < 2**32:
        raise data_error(
            "E501", f"synthetic-seq: count={count} of {length} tokens or seed={seed} is out of bounds", where
        )
    if length < 3 or words < FIRST_WORD + KEYWORDS:
        raise data_error(
            "E501", f"synthetic-seq needs sequences of at least 3 tokens and a vocabulary of at least "
            f"{FIRST_WORD + KEYWORDS}, got {length} and {words}", where,
        )  # fmt: skip
    x, y = generate(count, length, words, classes, seed)
    test = max(classes, count // 6)
    return Dataset(
        "synthetic-seq", x[test:], y[test:], x[:test], y[:test], classes=tuple(f"phrase{i}" for i in range(classes)),
        tokens=True, notes=[f"synthetic sequences: {classes} classes of key phrases in random text of {words:,} "
                            f"words, seed {seed} (built in, no download)"],
    )  # fmt: skip
