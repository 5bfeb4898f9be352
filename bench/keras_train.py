"""The hand-written Keras equivalent of `netdsl train`, for bench/train_throughput.py.

What a user writes without netdsl, in the seed's style (its ConvNet2 and ResNet, Keras 3
spelling) with today's idiomatic input pipeline: uint8 images in a tf.data pipeline that scales
them, applies the same augmentation layers (shift 0.1 with nearest fill, horizontal flip) and
one-hot encodes the labels; Adam 0.01, batch 256, categorical cross-entropy. The images are the
very ones netdsl trains on (its synthetic generator with the same count and seed).

Prints one JSON line: the seconds of every epoch and the number of training images.
    python -m bench.keras_train convnet2 --count 12000 --epochs 3
"""

import argparse
import json
import time

import keras
import tensorflow as tf
from keras import layers, regularizers
from keras.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, GlobalMaxPooling2D, Input
from keras.models import Model
from keras.optimizers import Adam

from netdsl.data.synthetic import generate


class ConvLayer:
    def __init__(self, filters, kernel_size, stride, l2=0.0):
        self.filters, self.kernel_size, self.stride, self.l2 = filters, kernel_size, stride, l2

    def __call__(self, x):
        regularizer = regularizers.l2(self.l2) if self.l2 else None
        x = Conv2D(self.filters, kernel_size=self.kernel_size, strides=self.stride, padding="same", use_bias=False,
                   kernel_regularizer=regularizer)(x)  # fmt: skip
        x = Activation("relu")(x)
        return BatchNormalization()(x)


class ResLayer(ConvLayer):
    def __call__(self, x):
        return layers.add([x, super().__call__(x)])


def ConvNet2(in_shape, widths, n_classes):
    i = Input(shape=in_shape)
    x = Conv2D(widths[0], kernel_size=5, strides=1, padding="same")(i)
    x = Activation("relu")(x)
    for n in range(1, len(widths)):
        x = ConvLayer(widths[n], kernel_size=3, stride=2)(x)
    x = GlobalMaxPooling2D()(x)
    x = Dense(n_classes)(x)
    return Model(inputs=i, outputs=Activation("softmax")(x))


def ResNet(in_shape, widths, n_classes):
    i = Input(shape=in_shape)
    x = Conv2D(widths[0], kernel_size=7, strides=1, padding="same")(i)
    x = Activation("relu")(x)
    for n in range(1, len(widths)):
        x = ConvLayer(widths[n], kernel_size=3, stride=2, l2=1e-6)(x)
        x = ResLayer(widths[n], kernel_size=3, stride=1, l2=1e-6)(x)
        x = ResLayer(widths[n], kernel_size=3, stride=1, l2=1e-6)(x)
    x = GlobalMaxPooling2D()(x)
    x = Dropout(0.1)(x)
    x = Dense(n_classes)(x)
    return Model(inputs=i, outputs=Activation("softmax")(x))


MODELS = {"convnet2": ConvNet2, "resnet": ResNet}


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--count", type=int, default=12000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()

    x, y = generate(args.count, (32, 32, 3), 10, seed=0)
    test = args.count // 6  # netdsl's synthetic source keeps the first sixth as its test split
    x_train, y_train = x[test:], y[test:]

    # Called one by one, Keras's preprocessing layers run as TensorFlow ops inside tf.data on any backend
    # (a keras.Sequential of them would call the JAX or PyTorch backend on tf.data's symbolic tensors).
    augment = [layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"), layers.RandomFlip("horizontal")]

    def prepare(images, labels):
        images = tf.cast(images, tf.float32) / 255.0
        for layer in augment:
            images = layer(images, training=True)
        return images, tf.one_hot(labels, 10)

    train = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train))
        .batch(args.batch)
        .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = MODELS[args.model]((32, 32, 3), [10, 20, 40, 80, 160], 10)
    model.compile(loss="categorical_crossentropy", optimizer=Adam(learning_rate=0.01), metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(train, epochs=args.epochs, callbacks=[timer], verbose=0)
    print(json.dumps({"seconds": timer.seconds, "train_images": len(x_train)}))


if __name__ == "__main__":
    main()
