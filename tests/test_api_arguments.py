"""The Python API checks its arguments (issue 14, item 14): a wrong type is a TypeError naming the
function and what it takes, a wrong value a NetdslError with a code, and a Network that skipped
Pydantic's validation (model_construct, model_copy(update=...)) is validated before it is used."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import netdsl
from netdsl.arguments import checked_network, is_trusted
from netdsl.ir import REGISTRY, Network
from tests.conftest import SPECS

Conv = REGISTRY["conv"]
TEXT = "input 8x8x3\nconv 3\ngap\ndense 2\n"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: netdsl.parse(b"input 8"),
            "netdsl.parse: text must be a str, got bytes; decode it first: data.decode('utf-8')",
        ),
        (lambda: netdsl.parse(None), "netdsl.parse: text must be a str, got None"),
        (lambda: netdsl.parse(3), "netdsl.parse: text must be a str, got int 3"),
        (lambda: netdsl.parse(TEXT, name=3), "netdsl.parse: name must be a str, got int 3"),
        (lambda: netdsl.parse(TEXT, file=Path("x")), "netdsl.parse: file must be a str, got PosixPath"),
        (lambda: netdsl.load(None), "netdsl.load: path must be a path (str or pathlib.Path), got None"),
        (lambda: netdsl.load(3.5), "netdsl.load: path must be a path (str or pathlib.Path), got float 3.5"),
        (
            lambda: netdsl.analyze(None),
            "netdsl.analyze: expected a netdsl.Network (from netdsl.parse or netdsl.load), got None",
        ),
        (lambda: netdsl.analyze(TEXT), "netdsl.analyze: expected a netdsl.Network"),
        (lambda: netdsl.analyze(netdsl.parse(TEXT), trainable=3), "netdsl.analyze: trainable must be a function"),
        (lambda: netdsl.check(None), "netdsl: a spec is its text (str), a path or a netdsl.Network, got NoneType"),
        (lambda: netdsl.check(3), "a spec is its text (str), a path or a netdsl.Network, got int"),
        (lambda: netdsl.emit(b"input 8"), "got bytes"),
        (lambda: netdsl.verify([TEXT]), "got list"),
        (lambda: netdsl.build_model(None), "got NoneType"),
        (lambda: netdsl.spec_id(None), "got NoneType"),
        (lambda: netdsl.draw(None), "got NoneType"),
        (lambda: netdsl.diff(TEXT, None), "got NoneType"),
        (
            lambda: netdsl.check(TEXT, input_shape="8x8x3"),
            "input_shape must be a tuple of ints such as (32, 32, 3), got str",
        ),
        (lambda: netdsl.check(TEXT, input_shape=(8.0, 8, 3)), "input_shape must hold ints, got (8.0, 8, 3)"),
        (lambda: netdsl.check(TEXT, input_shape=(True, 8, 3)), "input_shape must hold ints"),
        (lambda: netdsl.train(3), "a spec is its text (str), a path or a netdsl.Network, got int"),
        (lambda: netdsl.train(TEXT, data=3), "netdsl.train: data must be a str, got int 3"),
        (lambda: netdsl.evaluate(None), "netdsl.evaluate: run_dir must be a path (str or pathlib.Path), got None"),
        (lambda: netdsl.evaluate("run", data=b"x"), "netdsl.evaluate: data must be a str, got bytes"),
        (lambda: netdsl.predict(None, ["a.png"]), "netdsl.predict: run_dir must be a path"),
        (lambda: netdsl.predict("run", None), "netdsl.predict: images must be a path or a list of paths, got None"),
        (lambda: netdsl.predict("run", [None]), "netdsl.predict: each of images must be a path"),
        (lambda: netdsl.predict("run", ["a.png"], top="3"), "netdsl.predict: top must be an int, got str"),
    ],
)
def test_wrong_types_are_clear_type_errors(call, message: str) -> None:
    with pytest.raises(TypeError) as info:
        call()
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: netdsl.load("a\0b.net"), "error[E001]: cannot read a\u2400b.net: the path contains a NUL character"),
        (lambda: netdsl.check("x\0.net"), "error[E001]: cannot read x\u2400.net: the path contains a NUL character"),
        (
            lambda: netdsl.check(TEXT, input_shape=(0, 8, 3)),
            "error[E206]: input_shape must be one or more sizes of at least 1, got (0, 8, 3)",
        ),
        (
            lambda: netdsl.check(TEXT, input_shape=()),
            "error[E206]: input_shape must be one or more sizes of at least 1, got ()",
        ),
        (lambda: netdsl.predict("run", ["a.png"], top=0), "netdsl.predict: error[E201]: top must be at least 1, got 0"),
    ],
)
def test_wrong_values_are_netdsl_errors(call, expected: str) -> None:
    with pytest.raises(netdsl.NetdslError) as info:
        call()
    assert expected in str(info.value)


def test_paths_as_bytes_and_pathlike_are_read() -> None:
    assert netdsl.load(bytes(SPECS / "simple.net")).name == "simple"
    assert netdsl.check(SPECS / "simple.net").total_params == netdsl.check(str(SPECS / "simple.net")).total_params


def test_predict_with_one_image_path_reaches_the_run_check(tmp_path: Path) -> None:
    with pytest.raises(netdsl.NetdslError, match="is not a netdsl run"):  # reaches the run check with one path
        netdsl.predict(tmp_path, str(tmp_path / "a.png"))


def test_constructing_a_network_by_hand_validates_like_parsing() -> None:
    with pytest.raises(ValidationError, match="filters"):
        Network(input_shape=(8, 8, 3), layers=[Conv(filters=-3)])
    with pytest.raises(ValidationError, match="filters"):
        Network.model_validate({"input_shape": (8, 8, 3), "layers": [{"kind": "conv", "filters": -3}]})
    hand = Network(input_shape=(8, 8, 3), layers=[Conv(filters=3)])
    assert netdsl.analyze(hand).total_params == netdsl.analyze(netdsl.parse("input 8x8x3\nconv 3\n")).total_params == 84


def _bad_conv() -> object:
    return Conv(filters=3).model_copy(update={"filters": -3})  # model_copy does not validate


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (
            lambda: netdsl.parse(TEXT).model_copy(update={"layers": [_bad_conv()]}),
            "layers.0.conv.filters: Input should be greater than 0 (got -3)",
        ),
        (lambda: Network(input_shape=(8, 8, 3), layers=[Conv.model_construct(filters=-3)]), "layers.0.conv.filters"),
        (
            lambda: Network.model_construct(input_shape=(0, 8, 3), layers=[]),
            "input_shape.0: Input should be greater than 0 (got 0)",
        ),
        (lambda: netdsl.parse(TEXT).model_copy(update={"input_shape": (8, -1, 3)}), "input_shape.1"),
    ],
)
@pytest.mark.parametrize("use", ["analyze", "check", "emit", "spec_id", "build_model"])
def test_an_unvalidated_network_is_validated_before_use(make, problem: str, use: str) -> None:
    with pytest.raises(netdsl.NetdslError) as info:
        getattr(netdsl, use)(make())
    assert f"<Network>: error[E201]: invalid Network: {problem}" in str(info.value)


def test_a_list_changed_in_place_is_noticed() -> None:
    net = netdsl.parse(TEXT)
    net.layers.append(Conv.model_construct(filters=-3))
    with pytest.raises(netdsl.NetdslError, match=r"layers\.3\.conv\.filters"):
        netdsl.analyze(net)


def test_parsed_networks_are_not_validated_twice() -> None:
    """Trust is what keeps `check` as fast as before: a parsed network is used as it is."""
    net = netdsl.load(SPECS / "resnet.net")
    assert is_trusted(net) and checked_network(net, "analyze") is net
    assert is_trusted(netdsl.as_network(net, (64, 64, 3)))
    copy = net.model_copy(update={"name": "other"})
    assert not is_trusted(copy) and netdsl.analyze(copy).total_params == netdsl.analyze(net).total_params


def test_one_path_or_many() -> None:
    from netdsl.arguments import paths_argument

    assert paths_argument("a.png", "predict") == [Path("a.png")]
    assert paths_argument((Path("a.png"), b"b.png"), "predict") == [Path("a.png"), Path("b.png")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"out": 3}, "netdsl.train: out must be a path (str or pathlib.Path), got int 3"),
        ({"resume": 3}, "netdsl.train: resume must be a path"),
        ({"max_images": "x"}, "netdsl.train: max_images must be an int, got str"),
        ({"augment": [1]}, "netdsl.train: augment must be a dict such as {'flip': True}, got list [1]"),
        ({"verbose": "x"}, "netdsl.train: verbose must be None, 0, 1 or 2 (Keras's progress), got str"),
        ({"verbose": 7}, "got int 7"),
        ({"echo": None}, "netdsl.train: echo must be a function taking a line of text, got None"),
    ],
)
def test_train_options_of_the_wrong_type(tmp_path: Path, options: dict, message: str) -> None:
    """Found by trying: each of these was a raw TypeError from deep inside (or, for verbose, trained anyway)."""
    with pytest.raises(TypeError) as info:
        netdsl.train(TEXT, "synthetic:count=24,classes=2", **{"out": tmp_path / "run", **options})
    assert message in str(info.value)
    assert not (tmp_path / "run").exists()


def test_train_option_values_are_netdsl_errors(tmp_path: Path) -> None:
    with pytest.raises(netdsl.NetdslError, match=r"error\[E201\]: max_images must be at least 1, got 0"):
        netdsl.train(TEXT, "synthetic:count=24,classes=2", out=tmp_path / "run", max_images=0)
    with pytest.raises(netdsl.NetdslError, match=r"error\[E201\]: train: lr should be a finite number, got nan"):
        netdsl.train(TEXT, "synthetic:count=24,classes=2", out=tmp_path / "run", lr=float("nan"))


@pytest.mark.parametrize(
    ("call", "message"),
    [  # found by tests/fuzz/test_fuzz_api.py
        (
            lambda: netdsl.train(TEXT, None, Path("x")),
            "netdsl.check_budgets: budgets must be a list such as ['params < 1M'], got PosixPath",
        ),
        (lambda: netdsl.check_budgets(TEXT, "params < 1M"), "budgets must be a list such as ['params < 1M'], got str"),
        (lambda: netdsl.check_budgets(TEXT, [3]), "got list holding int"),
        (lambda: netdsl.format(None), "netdsl.format: text must be a str, got None"),
        (lambda: netdsl.list_runs(3), "netdsl.list_runs: folder must be a path"),
    ],
)
def test_newer_public_functions_check_their_arguments(call, message: str) -> None:
    with pytest.raises(TypeError) as info:
        call()
    assert message in str(info.value)


def test_a_run_folder_name_too_long_for_the_os() -> None:
    with pytest.raises(netdsl.NetdslError, match=r"error\[E508\]: cannot read a+: File name too long"):
        netdsl.list_runs("a" * 5000)
