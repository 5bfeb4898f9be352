"""netdsl's benchmarks: check speed against hand-written Keras, analyzer scale, training, accuracy.

Benchmarks are not tests: they measure, print and record; nothing here asserts a timing.
`python -m bench` runs the quick ones (a few minutes); each module also runs on its own
(`python -m bench.check_speed`, `python -m bench.scale`, `python -m bench.fmnist`). BENCHMARKS.md
holds the figures with the exact commands that produced them.
"""
