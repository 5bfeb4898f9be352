"""Transfer learning's policy, above the analyzer and the compiler: which freezing a spec asks for (its
`pretrained` line, each `phase` line), which preprocessing its backbone needs, and reading
`pretrained run="runs/xyz"` into a nested network (`resolve`).

The analyzer, the compiler and the emitter never import this module: they are handed a
`trainable(index, name)` callable and networks whose run backbones are already resolved. The public
entry points (`netdsl.analyze`, `netdsl.build_model`, `netdsl.emit`, `netdsl.verify`, the trainer) come
through here, so the spec's own freezing and phases apply wherever a user looks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from netdsl import analysis
from netdsl.backbones import APPLICATIONS
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Network, Span
from netdsl.layers.pretrained import Freezing, Pretrained, RunBackbone, RunBackboneOp, architecture_only
from netdsl.runs import RunDir

Trainable = Callable[[int, str], bool]


def _everything(index: int, name: str) -> bool:
    return True


# ---------------------------------------------------------------- freezing and preprocessing


def backbone_of(net: Network) -> Pretrained | None:
    """The network's `pretrained` layer, or None; E312 when it is not the first layer."""
    found = None
    for index, layer in enumerate(net.layers):
        if isinstance(layer, Pretrained):
            if index != 0 or found is not None:
                raise NetdslError([
                    Diagnostic("E312", "pretrained must be the first layer, right after `input`", layer.span,
                               help="a backbone starts the network; write your head (gap, dense, ...) after it")
                ])  # fmt: skip
            layer.check()
            found = layer
    return found


def freezing(net: Network, freeze: int | str | None = None, where: Span | None = None) -> Freezing | None:
    """The freezing the network's `pretrained` line asks for, or `freeze` (a `phase` line's, located at
    `where`) instead; None when nothing is frozen by the spec."""
    layer = backbone_of(net)
    if layer is None:
        if freeze is not None:
            raise NetdslError([Diagnostic("E311", "phase: freeze needs a `pretrained` backbone to count layers in",
                                          where, help="remove freeze from the phase line")])  # fmt: skip
        return None
    value = layer.freeze if freeze is None else freeze
    text = f"freeze={value}" if value in ("all", "none") else f"freeze<{value!r}".replace("'", '"')
    layer = layer.model_copy(update={"freeze": value, "span": where or layer.span})
    return Freezing(layer.frozen_below(), layer.span, f"{'phase' if where else layer.title} {text}")


def phase_freezings(net: Network) -> list[Freezing | None]:
    """Each `phase` line's freezing (its own `freeze`, else the `pretrained` line's), errors located at the phase."""
    return [freezing(net, phase.freeze, phase.span) for phase in net.training.phases]


def preprocessing(net: Network) -> str | None:
    """The `keras.applications` module whose `preprocess_input` the network's images need (ResNet50's "caffe"
    mode: RGB->BGR, ImageNet's channel means subtracted, on 0..255 pixels); None for netdsl's usual 0..1."""
    layer = backbone_of(net)
    if layer is None or layer.backbone is None:  # a run's backbone was trained on netdsl's 0..1 input
        return None
    return APPLICATIONS[layer.backbone].module


# ---------------------------------------------------------------- a previous run as the backbone


def resolve(net: Network, _reading: tuple[Path, ...] = ()) -> Network:
    """`net` with each `pretrained run=` layer carrying its run, read, cut and analysed (E508, E313, E314).

    `_reading` holds the runs whose specs are being resolved further up: a run that names itself, or two
    runs that name each other, is a cycle (E314), not an endless recursion."""

    def unresolved(layer: Any) -> bool:
        return isinstance(layer, Pretrained) and layer.run is not None and not layer.is_resolved

    if not any(unresolved(layer) for layer in net.layers):
        return net
    try:
        layers = [_resolve_run(layer, _reading) if unresolved(layer) else layer for layer in net.layers]
    except NetdslError as err:
        err.source = err.source or Source(net.source, net.file or "<string>")
        raise
    return net.model_copy(update={"layers": layers})


class _Cycle(Exception):
    """A run reached again while its own spec is being resolved; reported (E314) at the user's line."""

    def __init__(self, chain: tuple[Path, ...]) -> None:
        super().__init__(" -> ".join(map(str, chain)))


def _resolve_run(layer: Pretrained, reading: tuple[Path, ...]) -> Pretrained:
    layer.check()  # E203 / E202 (a backbone and a run, weights= with a run) come first
    path = Path(layer.run).resolve()  # type: ignore[arg-type]
    if path in reading:
        raise _Cycle((*reading[reading.index(path) :], path))
    try:
        run = RunDir.open(layer.run)  # type: ignore[arg-type]
        full = run.network()
        weights = run.weights_path()
        full = resolve(full, (*reading, path))
    except NetdslError as err:
        first = err.diagnostics[0]
        raise layer.fail("E508", first.message, first.help) from None
    except _Cycle as cycle:
        if reading:  # not yet at the spec the user wrote
            raise
        raise layer.fail("E314", f"the runs' backbones form a cycle: {cycle}",
                         help="a run's backbone must be an earlier run, not itself or a run built on it") from None  # fmt: skip
    cuts = [i for i, kept in enumerate(full.layers) if kept.ends_feature_extractor]
    if not cuts or cuts[-1] == 0:
        raise layer.fail(
            "E313", "the run's spec has no global pooling or flatten before its head, so there is no place to cut",
            help="a backbone ends where its feature map is pooled (gap, gmp) or flattened",
        )  # fmt: skip
    body = full.model_copy(update={"layers": full.layers[: cuts[-1]]})
    report = analysis.analyze(body, _everything)
    op = RunBackboneOp(tuple(report.output_shape[1:]), report.trainable_params, report.non_trainable_params,
                       report.macs)  # type: ignore[arg-type]  # fmt: skip
    kept_index = len(report.layers) - 1

    def build(keras: Any, x: Any) -> Any:
        """Build the run's whole model, load its weights, keep it up to the cut, and call that on `x`."""
        from netdsl.compile import build_model

        model = build_model(architecture_only(full), check=False)  # the run's weights replace any backbone's
        run.load_weights(model, weights, fail=lambda reason: layer.fail(
            "E511", f"{weights.name} does not fit the run's spec: {reason[:200]}"))  # fmt: skip
        backbone = keras.Model(model.inputs, model.layers[kept_index].output, name=layer.run_name)
        return backbone(x)

    return layer.with_run(RunBackbone(layer, tuple(body.input_shape or ()), op, build))


# ---------------------------------------------------------------- the spec's own freezing, everywhere


def _located(net: Network, call: Callable[[Network], Any]) -> Any:
    """`call(net)` on the network with its run resolved (after the E312/E203 checks of its `pretrained`
    line), giving any NetdslError the spec's source: transfer's errors are raised outside the analyzer."""
    try:
        backbone_of(net)
        return call(resolve(net))
    except NetdslError as err:
        if err.source is None:
            err.source = Source(net.source, net.file or "<string>")
        raise


def analyze(net: Network, trainable: Trainable | None = None) -> analysis.Report:
    """Shapes, counts, MACs and receptive fields (see `analysis.analyze`), with the spec's policy:
    `pretrained ... freeze` decides what trains unless `trainable` is given, and each `phase` line's
    freezing is reported in `phases`."""
    if net.input_shape is None or not net.layers:
        return analysis.analyze(net, trainable)  # E301 / E305 before anything else
    return _located(net, lambda resolved: _analyze(resolved, trainable))


def _analyze(net: Network, trainable: Trainable | None) -> analysis.Report:
    if trainable is not None:
        return analysis.analyze(net, trainable)
    freeze = freezing(net)
    report = analysis.analyze(net, freeze.trainable if freeze is not None else None)
    if freeze is not None:
        freeze.check(len(report.layers))
    return report.model_copy(update={"phases": phase_reports(net)}) if net.training.phases else report


def phase_reports(net: Network) -> list[analysis.PhaseReport]:
    """For each `phase` line, the counts with its freezing applied to the same model (the seed's before/after)."""
    out = []
    for number, (phase, freeze) in enumerate(zip(net.training.phases, phase_freezings(net)), 1):
        report = analysis.analyze(net, freeze.trainable if freeze is not None else _everything)
        if freeze is not None:
            freeze.check(len(report.layers))
        out.append(analysis.PhaseReport(
            phase=number, line=phase.span.line if phase.span else None, epochs=phase.epochs,
            frozen_below=freeze.below if freeze is not None else 0,
            trainable_params=report.trainable_params, non_trainable_params=report.non_trainable_params,
        ))  # fmt: skip
    return out


def spec_trainable(net: Network) -> Trainable | None:
    """The spec's own `pretrained ... freeze` as a `trainable(index, name)` callable, or None."""
    freeze = freezing(net)
    return freeze.trainable if freeze is not None else None


def build_model(net: Network, trainable: Trainable | None = None, check: bool = True) -> Any:
    """The Keras model, with the spec's freezing applied (unless `trainable` is given); see `compile`."""
    from netdsl.compile import build_model as build

    def run(resolved: Network) -> Any:
        chosen = trainable
        if chosen is None:
            freeze = freezing(resolved)
            if freeze is not None and check:
                _analyze(resolved, None)  # E311 (freeze past the last layer) before Keras builds anything
            chosen = freeze.trainable if freeze is not None else None
        return build(resolved, chosen, check)

    return _located(net, run)


def emit(net: Network) -> str:
    """`netdsl emit`'s module for a network, with the spec's freezing written as the seed writes it."""
    from netdsl.emit import emit_network

    def run(resolved: Network) -> str:
        freeze = freezing(resolved)
        if freeze is not None or resolved.training.phases:
            _analyze(resolved, None)  # E311 for the spec's and the phases' freezing, as `check` reports it
        return emit_network(resolved, freeze)

    return _located(net, run)


def verify(net: Network) -> Any:
    """`check --verify`: the analysis with the spec's freezing, compared with the Keras model."""
    from dataclasses import replace

    from netdsl.verify import verify_network

    def run(resolved: Network) -> Any:
        report = _analyze(resolved, None)  # the full report (phases, E311) that `check` shows
        return replace(verify_network(resolved, spec_trainable(resolved)), report=report)

    return _located(net, run)
