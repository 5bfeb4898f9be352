"""The hand-written Keras equivalent of `netdsl check specs/resnet.net`, in the seed's own style.

This is what a user does without netdsl to see a model's shapes and parameter counts: write the
model in Keras (the blog post's `ConvLayer`, `ResLayer` and `ResNet`, updated to Keras 3:
`learning_rate=` instead of `lr=`) and print `model.summary()`. `python -m bench.check_speed`
times this script against `netdsl check`; it must print 771,690 parameters like the post.
"""

from keras import layers, regularizers
from keras.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, GlobalMaxPooling2D, Input
from keras.models import Model
from keras.optimizers import Adam

in_shape = (32, 32, 3)
n_classes = 10
lr = 0.01


class ConvLayer:
    def __init__(self, filters, kernel_size, stride):
        self.filters = filters
        self.kernel_size = kernel_size
        self.stride = stride

    def __call__(self, x):
        x = Conv2D(
            self.filters,
            kernel_size=self.kernel_size,
            strides=self.stride,
            padding="same",
            use_bias=False,
            kernel_regularizer=regularizers.l2(1e-6),
        )(x)
        x = Activation("relu")(x)
        x = BatchNormalization()(x)
        return x


class ResLayer(ConvLayer):
    def __call__(self, x):
        return layers.add([x, super().__call__(x)])


def ResNet(in_shape, layers, n_classes, lr):
    i = Input(shape=in_shape)

    x = Conv2D(layers[0], kernel_size=7, strides=1, padding="same")(i)
    x = Activation("relu")(x)

    for n in range(1, len(layers)):
        x = ConvLayer(layers[n], kernel_size=3, stride=2)(x)
        x = ResLayer(layers[n], kernel_size=3, stride=1)(x)
        x = ResLayer(layers[n], kernel_size=3, stride=1)(x)

    x = GlobalMaxPooling2D()(x)
    x = Dropout(0.1)(x)
    x = Dense(n_classes)(x)
    x = Activation("softmax")(x)

    model = Model(inputs=i, outputs=x)
    opt = Adam(learning_rate=lr)
    model.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])

    return model


if __name__ == "__main__":
    model = ResNet(in_shape, [10, 20, 40, 80, 160], n_classes, lr)
    model.summary()
