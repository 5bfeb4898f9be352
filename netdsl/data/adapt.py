"""Making images fit a spec's input: channels, size, or a flat vector.

The seed's specs take 32x32x3; a user must still be able to train them on Fashion-MNIST
(28x28x1). Rather than refuse, the images are adapted once, in uint8, and the console says how
in one line. Small size differences are padded (the pixels stay exact and the objects keep their
scale); larger ones are resized. Shapes that cannot be reconciled are refused with a fix (E509).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from netdsl.data import Dataset, data_error

GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as PIL's convert("L")


def fmt(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def plan(image_shape: tuple[int, ...], input_shape: tuple[int, ...], where: str) -> list[str]:
    """The steps that turn `image_shape` into `input_shape`, as words; E509 if impossible."""
    image_shape = tuple(image_shape)
    if image_shape == tuple(input_shape):
        return []
    if len(input_shape) == 1:
        if int(np.prod(image_shape)) == input_shape[0]:
            return ["flattened"]
        raise data_error(
            "E509",
            f"images of {fmt(image_shape)} ({int(np.prod(image_shape)):,} values) cannot feed `input {input_shape[0]}`",
            where,
            help=f"use `input {fmt(image_shape)}` and `flatten` in the spec",
        )
    if len(input_shape) != 3 or len(image_shape) != 3:
        raise data_error(
            "E509", f"images of {fmt(image_shape)} cannot feed `input {fmt(input_shape)}`", where,
            help=f"use `input {fmt(image_shape)}` in the spec",
        )  # fmt: skip
    steps = []
    (h, w, c), (height, width, channels) = image_shape, input_shape
    if (h, w) != (height, width):
        if h <= height and w <= width and (height - h) <= h // 4 and (width - w) <= w // 4:
            steps.append(f"padded to {height}x{width}")
        else:
            steps.append(f"resized to {height}x{width}")
    if c != channels:
        if c == 1 and channels == 3:
            steps.append("grey channel repeated 3x")
        elif c in (3, 4) and channels == 1:
            steps.append("converted to grey")
        elif c == 4 and channels == 3:
            steps.append("alpha channel dropped")
        else:
            raise data_error(
                "E509", f"images have {c} channels but the spec's input has {channels}", where,
                help=f"use `input {height}x{width}x{c}` in the spec",
            )  # fmt: skip
    return steps


def adapt_images(x: np.ndarray, input_shape: tuple[int, ...], steps: list[str]) -> np.ndarray:
    """Apply `plan`'s steps to a uint8 batch (N x H x W x C), in bounded extra memory."""
    if not steps:
        return x
    if steps == ["flattened"]:
        return x.reshape(len(x), -1)
    height, width, channels = input_shape
    out = np.empty((len(x), height, width, channels), np.uint8)
    for start in range(0, len(x), 4096):
        part = x[start : start + 4096]
        if part.shape[-1] == 4:
            part = part[..., :3]
        if part.shape[-1] == 3 and channels == 1:
            part = np.rint(part.astype(np.float32) @ GREY_WEIGHTS)[..., None].astype(np.uint8)
        h, w = part.shape[1:3]
        if (h, w) != (height, width):
            if any(s.startswith("padded") for s in steps):
                top, left = (height - h) // 2, (width - w) // 2
                part = np.pad(part, ((0, 0), (top, height - h - top), (left, width - w - left), (0, 0)))
            else:
                part = resize(part, height, width)
        if part.shape[-1] == 1 and channels == 3:
            part = np.repeat(part, 3, axis=-1)
        out[start : start + len(part)] = part
    return out


def resize(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a uint8 batch with Pillow (no TensorFlow needed to load data)."""
    from PIL import Image

    out = np.empty((len(x), height, width, x.shape[-1]), np.uint8)
    for i, image in enumerate(x):
        picture = Image.fromarray(image[..., 0] if x.shape[-1] == 1 else image)
        resized = np.asarray(picture.resize((width, height), Image.BILINEAR))
        out[i] = resized[..., None] if resized.ndim == 2 else resized
    return out


def adapt(data: Dataset, input_shape: tuple[int, ...], dtype: str = "float32") -> Dataset:
    """The dataset with every split shaped like the spec's input, and a note saying what changed.
    `dtype` "int32" (`input L int`) takes token sequences, which are fitted to the length instead (E509
    when tokens meet a float input or images an `int` one)."""
    shape = f"input {fmt(tuple(input_shape))}"
    if data.tokens != (dtype == "int32"):
        if data.tokens:
            raise data_error(
                "E509", f"{data.name} holds token ids, which `{shape}` would read as numbers", data.name,
                help=f"write `{shape} int` and then `embed V D`, as specs/zoo/text_cnn.net does",
            )  # fmt: skip
        raise data_error(
            "E509", f"{data.name} holds images, but `{shape} int` takes token ids", data.name,
            help="train it on token sequences (--data FILE.npz with integer x, synthetic-seq or imdb)",
        )  # fmt: skip
    if data.tokens:
        from netdsl.data.sequences import adapt_tokens

        return adapt_tokens(data, input_shape)
    steps = plan(data.image_shape, input_shape, data.name)
    if not steps:
        return data
    changed = {}
    for split, (x, _) in data.splits().items():
        changed[f"x_{split}"] = adapt_images(x, input_shape, steps)
    note = f"adapted {data.name} {fmt(data.image_shape)} -> {fmt(tuple(input_shape))} ({', '.join(steps)})"
    return replace(data, **changed, notes=[*data.notes, note])
