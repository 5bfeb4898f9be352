"""Training on the new inputs: token sequences (`input L int`: an .npz of ids, the built-in synthetic-seq
task, IMDB through Keras) and per-pixel labels (a U-Net-shaped spec on a segmentation .npz); and what
`netdsl train` refuses (several inputs or outputs, options that do not fit the data).

Budget: about half a minute on 2 CPU cores; every run is a few hundred examples for one to three epochs.
The refusals fail before TensorFlow is imported, so they cost almost nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netdsl
from netdsl.cli import main
from netdsl.data import load_dataset
from netdsl.data.sequences import fit_length, generate
from netdsl.diagnostics import NetdslError
from tests.conftest import ROOT, SPECS

QUIET = {"echo": lambda message: None, "verbose": 0}

SMALL_TEXT_CNN = """\
input 40 int
embed 500 16
cat [ conv 16 k3 valid relu; gmp | conv 16 k4 valid relu; gmp ]
dense 3 softmax
train adam lr=0.01 batch=32 epochs=2 seed=3
"""

TINY_UNET = """\
input 32x32x1
conv 8 k3 relu as d1; maxpool 2
conv 16 k3 relu
deconv 8 k2 s2
cat d1
conv 8 k3 relu
conv 2 k1 softmax
train adam lr=0.01 batch=16 epochs=3 seed=0
"""


def error_of(call) -> NetdslError:
    with pytest.raises(NetdslError) as info:
        call()
    return info.value


# ---------------------------------------------------------------- data, no training


def test_fit_length_pads_and_cuts_at_the_start_as_keras_does() -> None:
    keras = pytest.importorskip("keras")
    rows = [[5, 6, 7], [1, 2, 3, 4, 5, 6], []]
    assert fit_length(rows, 4).tolist() == [[0, 5, 6, 7], [3, 4, 5, 6], [0, 0, 0, 0]]
    assert fit_length(rows, 4).tolist() == keras.utils.pad_sequences(rows, maxlen=4).tolist()
    assert fit_length(rows, 4).dtype == np.int32


def test_synthetic_sequences_are_deterministic_token_ids_that_fit_the_embedding() -> None:
    x, y = generate(600, 50, 300, classes=3, seed=4)
    again, labels = generate(600, 50, 300, classes=3, seed=4)
    assert x.dtype == np.int32 and x.shape == (600, 50) and np.array_equal(x, again) and np.array_equal(y, labels)
    assert np.bincount(y).tolist() == [200, 200, 200]
    assert 0 <= x.min() and x.max() < 300
    assert not np.array_equal(x, generate(600, 50, 300, classes=3, seed=5)[0])
    data = load_dataset("synthetic", (50,), classes_hint=3, dtype="int32", vocabulary=300)  # `int` input: sequences
    assert data.tokens and data.name == "synthetic-seq" and data.x_train.shape[1:] == (50,)
    assert data.sizes() == "10,000 train / 2,000 test, 50 tokens, 3 classes"


def test_token_npz_keeps_int32_ids_and_is_fitted_to_the_input(tmp_path: Path) -> None:
    path = tmp_path / "tokens.npz"
    np.savez(path, x=np.arange(60).reshape(6, 10) + 40_000, y=np.arange(6) % 2)
    data = load_dataset(str(path), (8,), dtype="int32")
    assert data.tokens and data.x_train.dtype == np.int32 and data.x_train.max() == 40_059  # not scaled, not clipped
    assert len(data.y_test) == 0  # x and y alone: all for training
    from netdsl.data.adapt import adapt

    fitted = adapt(data, (12,), "int32")
    assert fitted.x_train[0].tolist() == [0, 0, *range(40_000, 40_010)]
    assert "fitted tokens.npz's sequences of 10 tokens to 12" in fitted.notes[-1]


def test_token_ids_outside_the_vocabulary_are_located_at_the_embedding(tmp_path: Path, runner) -> None:
    path = tmp_path / "tokens.npz"
    np.savez(path, x=np.full((8, 40), 900), y=np.arange(8) % 3)
    spec = tmp_path / "cnn.net"
    spec.write_text(SMALL_TEXT_CNN)
    result = runner.invoke(main, ["train", str(spec), "--data", str(path)])
    assert result.exit_code == 1
    assert (
        f"{spec}:2:1: error[E520]: x_train of tokens.npz holds token id 900, outside the embedding's vocabulary "
        "of 500 (ids 0..499)" in result.output
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("input 40\ndense 3 softmax\n", "E509]: synthetic-seq holds token ids, which `input 40` would read as numbers"),
        ("input 8x8x3 int\nembed 500 4\ngap\ndense 3 softmax\n", "E509]: synthetic-seq holds token sequences, but"),
    ],
)
def test_token_sequences_need_an_int_sequence_input(tmp_path: Path, spec: str, message: str) -> None:
    err = error_of(lambda: netdsl.train(spec, "synthetic-seq:count=60", out=tmp_path / "run", **QUIET))
    assert message in str(err)


def test_images_cannot_feed_an_int_input(tmp_path: Path) -> None:
    from netdsl.data import Dataset
    from netdsl.data.adapt import adapt

    images = np.zeros((2, 8, 8, 3), np.uint8)
    err = error_of(lambda: adapt(Dataset("pics", images, np.zeros(2), images, np.zeros(2)), (40,), "int32"))
    assert "E509]: pics holds images, but `input 40 int` takes token ids" in str(err)
    np.savez(tmp_path / "images.npz", x=images, y=np.arange(2))
    err = error_of(lambda: load_dataset(str(tmp_path / "images.npz"), (40,), dtype="int32"))
    assert "E504]: x_train must hold token sequences (N x L), got shape (2, 8, 8, 3)" in str(err)


def test_imdb_goes_through_keras_and_fails_offline_with_a_coded_error(monkeypatch) -> None:
    keras = pytest.importorskip("keras")
    asked = {}

    def offline(num_words: int) -> None:
        asked["num_words"] = num_words
        raise Exception("URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz")

    monkeypatch.setattr(keras.datasets.imdb, "load_data", offline)
    err = error_of(lambda: load_dataset("imdb", (200,), dtype="int32", vocabulary=5000))
    assert asked == {"num_words": 5000}  # the embedding's vocabulary: rarer words become Keras's id 2
    text = str(err)
    assert text.startswith("imdb: error[E501]: cannot load imdb: URL fetch failure on https://")
    assert "--data synthetic-seq (built in)" in text


def test_imdb_reviews_are_fitted_to_the_input(monkeypatch) -> None:
    keras = pytest.importorskip("keras")
    reviews = (np.array([[1, 14, 22], [1, 5]], dtype=object), np.array([1, 0]))
    monkeypatch.setattr(keras.datasets.imdb, "load_data", lambda num_words: (reviews, reviews))
    data = load_dataset("imdb", (4,), dtype="int32", vocabulary=100)
    assert data.tokens and data.classes == ("negative", "positive")
    assert data.x_train.tolist() == [[0, 1, 14, 22], [0, 0, 1, 5]] and data.y_test.tolist() == [1, 0]


def test_per_pixel_labels_are_read_from_masks(tmp_path: Path) -> None:
    path = tmp_path / "seg.npz"
    np.savez(path, x=np.zeros((4, 8, 8, 1), np.uint8), y=np.ones((4, 8, 8, 1), np.uint8))
    data = load_dataset(str(path), (8, 8, 1))
    assert data.y_train.shape == (4, 8, 8) and data.sizes() == "4 train / 0 test, 8x8x1, labels per pixel (8x8)"


def test_labels_must_match_what_the_network_scores(tmp_path: Path) -> None:
    per_image = tmp_path / "per_image.npz"
    np.savez(per_image, x=np.zeros((4, 32, 32, 1), np.uint8), y=np.arange(4) % 2)
    err = error_of(lambda: netdsl.train(TINY_UNET, str(per_image), out=tmp_path / "a", **QUIET))
    assert (
        "<string>:7:1: error[E506]: the network scores each of 32x32 positions, but per_image.npz has one label"
        in str(err)
    )
    small = tmp_path / "small.npz"
    np.savez(small, x=np.zeros((4, 32, 32, 1), np.uint8), y=np.zeros((4, 16, 16), np.uint8))
    err = error_of(lambda: netdsl.train(TINY_UNET, str(small), out=tmp_path / "b", **QUIET))
    assert "error[E506]: the network scores 32x32 positions, but small.npz's labels are 16x16" in str(err)
    classifier = "input 32x32x1\nconv 4 k3 relu\ngap\ndense 2 softmax\n"
    masks = tmp_path / "masks.npz"
    np.savez(masks, x=np.zeros((4, 32, 32, 1), np.uint8), y=np.zeros((4, 32, 32), np.uint8))
    err = error_of(lambda: netdsl.train(classifier, str(masks), out=tmp_path / "c", **QUIET))
    assert "error[E506]: the network scores each example once, but masks.npz has labels of 32x32" in str(err)


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        (SMALL_TEXT_CNN + "augment flip\n", {}, "augment flip moves pixels; a network trained on token ids"),
        (TINY_UNET, {"shift": 0.1}, "augment shift moves pixels; a network trained on per-pixel labels"),
        (TINY_UNET, {"label_smoothing": 0.1}, "label_smoothing=0.1 needs one-hot labels"),
    ],
)
def test_options_that_do_not_fit_the_data_are_refused(tmp_path: Path, spec: str, options: dict, message: str) -> None:
    overrides = {"augment": {"shift": options.pop("shift")}} if "shift" in options else options
    err = error_of(lambda: netdsl.train(spec, "synthetic-seq", out=tmp_path / "run", **overrides, **QUIET))
    assert "E521" in str(err) and message in str(err)
    assert not (tmp_path / "run").exists()


def test_several_inputs_or_outputs_are_refused_before_keras_loads(tmp_path: Path) -> None:
    from tests.test_graph_specs import TWO_INPUTS

    (tmp_path / "two.net").write_text(TWO_INPUTS)
    (tmp_path / "heads.net").write_text("input 8\ndense 4 as a\ndense 2 as b\noutput a b\n")
    code = (
        "import sys, netdsl\n"
        "for spec in sys.argv[1:]:\n"
        "    try:\n        netdsl.train(spec, echo=lambda m: None)\n"
        "    except netdsl.NetdslError as err:\n        print(err)\n"
        "print('keras loaded:', 'keras' in sys.modules or 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "two.net"), str(tmp_path / "heads.net")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        f"{tmp_path / 'two.net'}:2:1: error[E522]: netdsl trains a network of one input and one output; "
        "this one has 2 inputs (image, meta)" in out
    )
    assert "error[E522]: netdsl trains a network of one input and one output; this one has 2 outputs (a, b)" in out
    assert out.strip().endswith("keras loaded: False")


def test_the_docs_example_of_several_inputs_is_refused_by_the_cli(runner, write_spec) -> None:
    """docs/language.md says `netdsl train` refuses it: exit 1, a coded error, no traceback."""
    from tests.test_graph_specs import TWO_INPUTS

    result = runner.invoke(main, ["train", str(write_spec(TWO_INPUTS))])
    assert result.exit_code == 1 and "error[E522]" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------- training (Keras)


def test_the_zoo_text_cnn_learns_synthetic_sequences(tmp_path: Path) -> None:
    """Kim's text CNN as written in specs/zoo/ (20,000 x 128 embedding) on the built-in task: chance is 0.5."""
    pytest.importorskip("keras")
    result = netdsl.train(
        SPECS / "zoo" / "text_cnn.net", "synthetic-seq:count=1200", out=tmp_path / "run", epochs=2, seed=1, **QUIET
    )
    assert result.metrics["test_images"] == 200
    assert result.metrics["test_accuracy"] >= 0.9, result.metrics
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["input_scale"] is None and config["preprocessing"] == "none (int32 token ids)"


def test_token_ids_reach_the_model_as_int32_unscaled() -> None:
    pytest.importorskip("keras")
    from netdsl.ir import Augment
    from netdsl.trainer.head import Head
    from netdsl.trainer.pipeline import input_scaling, pipeline

    net = netdsl.parse(SMALL_TEXT_CNN)
    x = np.array([[7, 499, 0, 3]], np.int32)
    batches = pipeline(x, np.array([2]), 8, Head(3, "softmax", None), training=False, augment=Augment(), seed=0,
                       scale=input_scaling(net))  # fmt: skip
    ((batch_x, batch_y),) = list(batches)
    assert batch_x.dtype == "int32" and batch_x.numpy().tolist() == [[7, 499, 0, 3]]
    assert batch_y.numpy().tolist() == [[0, 0, 1]]


def test_a_text_cnn_trains_on_a_token_npz_and_evaluates(tmp_path: Path, runner) -> None:
    pytest.importorskip("keras")
    x, y = generate(900, 40, 500, classes=3, seed=2)
    np.savez(tmp_path / "tokens.npz", x_train=x[:750], y_train=y[:750], x_test=x[750:], y_test=y[750:])
    spec = tmp_path / "cnn.net"
    spec.write_text(SMALL_TEXT_CNN.replace("epochs=2", "epochs=3"))
    result = runner.invoke(main, ["train", str(spec), "--data", str(tmp_path / "tokens.npz"), "--out",
                                  str(tmp_path / "run"), "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "data: tokens.npz: 675 train / 75 valid / 150 test, 40 tokens, 3 classes" in result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.8, metrics  # chance is 1/3
    evaluated = netdsl.evaluate(tmp_path / "run")
    assert evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"])
    refused = runner.invoke(main, ["predict", str(tmp_path / "run"), str(tmp_path / "cnn.net")])
    assert refused.exit_code == 1 and "error[E523]: predict ranks the classes of image files" in refused.output


def discs(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey 32x32 pictures of a bright disc on dark noise, and its mask (1 inside, 0 outside)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    cy, cx, r = rng.uniform(9, 23, count), rng.uniform(9, 23, count), rng.uniform(4, 8, count)
    mask = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2 <= r[:, None, None] ** 2
    x = np.where(mask, 170, 60) + rng.normal(0, 25, mask.shape)
    return np.clip(x, 0, 255).astype(np.uint8)[..., None], mask.astype(np.uint8)


def test_a_u_net_shaped_spec_trains_on_per_pixel_labels(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    x, y = discs(360, 0)
    np.savez(
        tmp_path / "seg.npz", x_train=x[:300], y_train=y[:300, ..., None], x_test=x[300:], y_test=y[300:, ..., None]
    )
    background = 1 - y[300:].mean()
    result = netdsl.train(TINY_UNET, str(tmp_path / "seg.npz"), out=tmp_path / "run", **QUIET)
    assert result.metrics["test_images"] == 60
    assert result.metrics["test_accuracy"] >= 0.95 > background, (result.metrics, background)  # pixel accuracy
    assert netdsl.evaluate(tmp_path / "run")["accuracy"] == pytest.approx(result.metrics["test_accuracy"])


def test_a_sigmoid_mask_head_trains_with_binary_cross_entropy_per_pixel(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    x, y = discs(360, 1)
    np.savez(tmp_path / "seg.npz", x=x, y=y)  # x and y alone: the validation split is also the test
    spec = TINY_UNET.replace("conv 2 k1 softmax", "conv 1 k1 sigmoid")
    result = netdsl.train(spec, str(tmp_path / "seg.npz"), out=tmp_path / "run", epochs=5, **QUIET)
    background = 1 - y.mean()  # about 0.88: a mask of all background scores that much
    assert result.metrics["test_accuracy"] >= 0.97 > background, result.metrics


def test_the_readme_data_snippet_makes_files_that_netdsl_reads(tmp_path: Path, monkeypatch) -> None:
    """README.md's `make_data.py` runs as written, and its files fit the zoo text CNN and specs/unet.net."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("save this as `make_data.py`", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, "-c", snippet], check=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    tokens = load_dataset("tokens.npz", (200,), dtype="int32")
    assert tokens.x_train.shape == (6000, 200) and tokens.x_train.dtype == np.int32 and tokens.x_train.max() < 20_000
    masks = load_dataset("masks.npz", (128, 128, 1))
    assert masks.x_train.shape == (400, 128, 128, 1) and masks.y_train.shape == (400, 128, 128)
    assert 0.05 < masks.y_train.mean() < 0.2


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("synthetic-seq:classes=21", "needs 2 to 20 classes and 2 sequences per class"),
        ("synthetic-seq:count=3", "got classes=2, count=3"),
        ("synthetic-seq:count=2000000", "to 1,000,000 sequences"),
        ("synthetic-seq:length=9", "synthetic-seq: unknown option 'length=9'"),
        ("synthetic-seq:count=x", "synthetic-seq: bad option value"),
        ("synthetic-seq:seed=-1", "seed=-1 is out of bounds"),
    ],
)
def test_synthetic_sequence_options_out_of_bounds_are_e501(source: str, message: str) -> None:
    err = error_of(lambda: load_dataset(source, (40,), dtype="int32", vocabulary=500))
    assert "E501" in str(err) and message in str(err)
