"""The image zoo (specs/zoo/): lines of netdsl against lines of the keras.applications source, and the time
of `netdsl check` on each spec (whole processes, as a user runs it). The figures of docs/zoo.md.

Keras's lines are read from its installed source files (parsed, not imported): the public function (say
`ResNet50`) and, beside it, the function with the module's helpers it calls (`ResNet`,
`stack_residual_blocks_v1`, `residual_block_v1`). Lines are counted without blank lines, comments and
docstrings; the Keras functions also hold argument checks and weight downloads, which netdsl has no need
of, so the first count is the fairer one only for models written in one function (VGG16, Xception,
InceptionV3).

    python -m bench.zoo [--runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
from pathlib import Path

from bench.measure import ROOT, machine, netdsl_command, run_once, summarize

ZOO = ROOT / "specs" / "zoo"

SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "vgg16": ("vgg16", ("VGG16",)),
    "vgg19": ("vgg19", ("VGG19",)),
    "resnet50": ("resnet", ("ResNet50", "ResNet", "stack_residual_blocks_v1", "residual_block_v1")),
    "resnet101": ("resnet", ("ResNet101", "ResNet", "stack_residual_blocks_v1", "residual_block_v1")),
    "resnet152": ("resnet", ("ResNet152", "ResNet", "stack_residual_blocks_v1", "residual_block_v1")),
    **{name: ("resnet_v2", (function, "resnet.ResNet", "resnet.stack_residual_blocks_v2", "resnet.residual_block_v2"))
       for name, function in [("resnet50v2", "ResNet50V2"), ("resnet101v2", "ResNet101V2"),
                              ("resnet152v2", "ResNet152V2")]},
    **{f"densenet{n}": ("densenet", (f"DenseNet{n}", "DenseNet", "dense_block", "transition_block", "conv_block"))
       for n in (121, 169, 201)},
    "xception": ("xception", ("Xception",)),
    "inception_v3": ("inception_v3", ("InceptionV3", "conv2d_bn")),
    "mobilenet": ("mobilenet", ("MobileNet", "_conv_block", "_depthwise_conv_block")),
    "mobilenetv2": ("mobilenet_v2", ("MobileNetV2", "_inverted_res_block", "_make_divisible")),
    **{f"mobilenetv3{size}": ("mobilenet_v3", (f"MobileNetV3{size.title()}", "MobileNetV3", "relu", "hard_sigmoid",
                                               "hard_swish", "_depth", "_se_block", "_inverted_res_block"))
       for size in ("small", "large")},
    **{f"efficientnetb{i}": ("efficientnet", (f"EfficientNetB{i}", "EfficientNet", "block")) for i in range(8)},
    "inception_resnet_v2": ("inception_resnet_v2", ("InceptionResNetV2", "conv2d_bn", "CustomScaleLayer",
                                                    "inception_resnet_block")),
    "convnext_tiny": ("convnext", ("ConvNeXtTiny", "ConvNeXt", "ConvNeXtBlock", "LayerScale", "StochasticDepth",
                                   "PreStem", "Head")),
    "convnext_small": ("convnext", ("ConvNeXtSmall", "ConvNeXt", "ConvNeXtBlock", "LayerScale", "StochasticDepth",
                                    "PreStem", "Head")),
    "convnext_base": ("convnext", ("ConvNeXtBase", "ConvNeXt", "ConvNeXtBlock", "LayerScale", "StochasticDepth",
                                   "PreStem", "Head")),
    "convnext_large": ("convnext", ("ConvNeXtLarge", "ConvNeXt", "ConvNeXtBlock", "LayerScale", "StochasticDepth",
                                    "PreStem", "Head")),
    "convnext_xlarge": ("convnext", ("ConvNeXtXLarge", "ConvNeXt", "ConvNeXtBlock", "LayerScale", "StochasticDepth",
                                     "PreStem", "Head")),
    "efficientnetv2b0": ("efficientnet_v2", ("EfficientNetV2B0", "EfficientNetV2", "FusedMBConvBlock", "MBConvBlock",
                                             "round_filters", "round_repeats")),
    **{f"efficientnetv2{size}": ("efficientnet_v2", (f"EfficientNetV2{size.upper()}", "EfficientNetV2",
                                                      "FusedMBConvBlock", "MBConvBlock", "round_filters",
                                                      "round_repeats"))
       for size in ("b1", "b2", "b3", "s", "m", "l")},
    "nasnet_mobile": ("nasnet", ("NASNetMobile", "NASNet", "_separable_conv_block", "_adjust_block", "_normal_a_cell",
                                 "_reduction_a_cell")),
    "nasnet_large": ("nasnet", ("NASNetLarge", "NASNet", "_separable_conv_block", "_adjust_block", "_normal_a_cell",
                                "_reduction_a_cell")),
}  # fmt: skip
"""Zoo spec -> (keras.applications module, the public function then the helpers it calls;
`module.name` for a helper from another module)."""


def applications_dir() -> Path:
    """keras/src/applications, found without importing Keras."""
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("keras is not installed: pip install 'netdsl[keras]'")
    return Path(next(iter(spec.submodule_search_locations))) / "src" / "applications"


def code_lines(path: Path, function: str) -> int:
    """Lines of the top-level `function` (or class: ConvNeXt's LayerScale) in `path` (decorators included),
    without blanks, comments and its docstring."""
    lines = path.read_text().splitlines()
    tree = ast.parse("\n".join(lines))
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == function]
    skip: set[int] = set()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        skip = set(range(first.lineno, first.end_lineno + 1))  # type: ignore[operator]
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    body = range(start, node.end_lineno + 1)  # type: ignore[operator]
    return sum(1 for i in body if i not in skip and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#"))


def keras_lines(name: str) -> tuple[int, int]:
    """(the public function's lines, with its helpers')."""
    module, functions = SOURCES[name]
    where = applications_dir()
    counts = [
        code_lines(where / f"{f.split('.')[0]}.py", f.split(".")[1])
        if "." in f
        else code_lines(where / f"{module}.py", f)
        for f in functions
    ]
    return counts[0], sum(counts)


def netdsl_lines(name: str) -> tuple[int, int]:
    """(the spec's lines, its statement lines: without blanks and comments)."""
    lines = (ZOO / f"{name}.net").read_text().splitlines()
    return len(lines), sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def main(argv: list[str] | None = None) -> dict:
    """Measure every image zoo spec; print a markdown table; return the numbers."""
    ap = argparse.ArgumentParser(prog="python -m bench.zoo", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs of `netdsl check` per spec (median); default 5")
    ap.add_argument("--json", type=Path, help="write the numbers to this file")
    args = ap.parse_args(argv)
    rows = {}
    for name in SOURCES:
        command = [*netdsl_command(), "check", str((ZOO / f"{name}.net").relative_to(ROOT))]
        run_once(command)  # warm: .pyc files, Lark's grammar cache
        samples = [run_once(command) for _ in range(args.runs)]
        if any(sample.returncode for sample in samples):
            raise SystemExit(f"benchmark command failed: {' '.join(command)}")
        check = summarize(samples).as_dict()
        rows[name] = {"netdsl_lines": netdsl_lines(name), "keras_lines": keras_lines(name), "check": check}
    print("| spec | netdsl lines (statements) | Keras function (with helpers) | check wall s (range) | check CPU s |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        (total, statements), (function, helpers) = row["netdsl_lines"], row["keras_lines"]
        check = row["check"]
        wall = f"{check['wall_s']:.2f} ({check['wall_min_s']:.2f}-{check['wall_max_s']:.2f})"
        print(f"| {name} | {total} ({statements}) | {function} ({helpers}) | {wall} | {check['cpu_s']:.2f} |")
    out = {"machine": machine(), "runs": args.runs, "specs": rows}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
