"""Nothing a user or a file controls reaches the terminal raw (issue 14, item 12): file names, folder
(class) names, data set names and echoed source lines go through `netdsl.terminal.printable`, so an
ESC sequence, a C1 control or a bidi override is shown as a visible stand-in.

CliRunner strips ANSI sequences unless `color=True`, which would hide exactly what is tested here:
every invocation passes it, so the output is what a terminal would receive.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from netdsl.cli import main
from netdsl.terminal import printable

UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
HOSTILE = "x\x1b]0;owned\x07\x1b[2J\u202egnp.\x9b31m"  # set the title, clear the screen, reverse, CSI


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), color=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert not UNSAFE.search(result.output), repr(result.output)
    return result


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcödé, 日本, ━━", "plain text, ünïcödé, 日本, ━━"),
        ("a\x1b[31mb", "a\u241b[31mb"),
        ("nul\x00 cr\r del\x7f tab\t", "nul\u2400 cr\u240d del\u2421 tab "),
        ("c1 \x85 \x9b", "c1 \\x85 \\x9b"),
        ("bidi \u202e \u2066 \u200f \u061c \u2028 \ufeff", "bidi \\u202e \\u2066 \\u200f \\u061c \\u2028 \\ufeff"),
        ("bytes \udcff \udc9b", "bytes \\xff \\x9b"),
        ("two\nlines", "two\nlines"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(shown) == shown  # idempotent: escaping twice changes nothing
    assert not UNSAFE.search(printable(text).replace("\n", ""))


def test_a_name_stays_on_one_line() -> None:
    assert printable("a\nb", newlines=False) == "a\u240ab"


def test_hostile_spec_file_names_in_errors_and_tables(tmp_path: Path) -> None:
    bad = tmp_path / f"{HOSTILE}.net"
    bad.write_text("input 8x8x3\ncnv 4\n", encoding="utf-8")
    result = invoke("check", str(bad))
    assert result.exit_code == 1
    assert f"{printable(str(bad))}:2:1: error[E101]: unknown layer 'cnv'" in result.output
    good = tmp_path / f"ok{HOSTILE}.net"
    good.write_text("input 8x8x3\ngap\ndense 4\n", encoding="utf-8")
    result = invoke("check", str(good))
    assert result.exit_code == 0 and f'Model: "ok{printable(HOSTILE)}"' in result.output


def test_undecodable_bytes_in_a_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bad\udc9b\udcff.net"  # the bytes 0x9b 0xff, as os.listdir would return them
    path.write_text("input 8x8x3\ngap\ndense 4\n", encoding="utf-8")
    result = invoke("check", str(path))
    assert result.exit_code == 0 and 'Model: "bad\\x9b\\xff"' in result.output


def test_echoed_source_lines_and_the_caret(tmp_path: Path) -> None:
    spec = tmp_path / "s.net"
    spec.write_text("input 8x8x3\n# \u202e \u2066 hidden\nconv 4 \u202e@\n", encoding="utf-8")
    result = invoke("check", str(spec))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    shown = next(i for i, line in enumerate(lines) if line.startswith("3 | "))
    assert lines[shown] == "3 | conv 4 \\u202e@"
    assert "s.net:3:8: error[E103]: unexpected character U+202E" in result.output
    # the caret spans the six characters that stand for the one it points at
    assert lines[shown + 1] == "  | " + " " * len("conv 4 ") + "^" * len("\\u202e")


def test_emit_to_a_hostile_output_name(tmp_path: Path) -> None:
    spec = tmp_path / "s.net"
    spec.write_text("input 8x8x3\ngap\ndense 4\n", encoding="utf-8")
    result = invoke("emit", str(spec), "-o", str(tmp_path / f"{HOSTILE}.py"))
    assert result.exit_code == 0 and f"wrote {printable(str(tmp_path / HOSTILE))}.py" in result.output


def test_hostile_class_folder_image_and_data_names_through_train_evaluate_predict(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    from PIL import Image

    data = tmp_path / f"data{HOSTILE}"
    rng = np.random.default_rng(0)
    for name in (f"cat{HOSTILE}", "dog\u202e"):
        (data / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(data / name / f"{i}.png")
    spec = tmp_path / "s.net"
    spec.write_text("input 8x8x3\ngap\ndense 2 softmax\ntrain epochs=1 batch=4\n", encoding="utf-8")
    trained = invoke("train", "-q", str(spec), "--data", str(data), "--out", str(tmp_path / "run"), "--seed", "1")
    assert trained.exit_code == 0, trained.output
    assert f"cat{printable(HOSTILE)}" in trained.output and "dog\\u202e" in trained.output
    evaluated = invoke("evaluate", str(tmp_path / "run"))
    assert evaluated.exit_code == 0 and f"images of data{printable(HOSTILE)})" in evaluated.output
    image = tmp_path / f"img{HOSTILE}.png"
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(image)
    predicted = invoke("predict", str(tmp_path / "run"), str(image), "--top", "2")
    assert predicted.exit_code == 0
    assert predicted.output.startswith(f"{printable(str(image))}: ")
    assert f"cat{printable(HOSTILE)} " in predicted.output and "dog\\u202e " in predicted.output
