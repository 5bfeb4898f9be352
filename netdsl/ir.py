"""The IR: validated, frozen Pydantic models shared by every stage.

Two levels:
- the *surface program* (`Command`, `Repeat`, `Argument`): what the parser saw, with spans, before
  variables and `repeat` are resolved. Plain dataclasses; they only live between parse and lower.
- the *network* (`Network` holding `Layer` nodes): what the analyzer, the compiler and the emitter
  read. Pydantic models with a discriminated union of layer kinds built from the layer registry,
  so JSON in and out (and a misspelt kind's list of valid kinds) come for free.

Layer classes register themselves by subclassing `Layer`; `netdsl.layers` imports them all and
then completes `Network`'s union (see `netdsl/layers/__init__.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr

if TYPE_CHECKING:  # only for annotations: the analyzer and compiler supply real graphs; lowering, provenance
    from netdsl.layers.base import Graph, Tensor
    from netdsl.provenance import Provenance


class Span(BaseModel):
    """Where a node came from in the source: 1-based line and column, end exclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0


# ---------------------------------------------------------------- surface program


@dataclass(frozen=True)
class Argument:
    """One argument as written: `10`, `k3`, `same`, `l2=1e-6`, `freeze<142`, `32x32x3`.

    `value` is an int, float, str (a bare word or a quoted string) or a tuple of ints (a shape).
    `key`/`op` are set for `key=value` and `key<value`.
    """

    value: Any
    span: Span
    key: str | None = None
    op: Literal["=", "<"] | None = None
    quoted: bool = False

    @property
    def is_word(self) -> bool:
        return isinstance(self.value, str) and not self.quoted and self.key is None

    def text(self) -> str:
        """The argument roughly as the user wrote it, for messages."""
        value = "x".join(map(str, self.value)) if isinstance(self.value, tuple) else self.value
        value = self.value.text() if isinstance(self.value, Expr) else value
        value = f'"{value}"' if self.quoted else value
        return f"{self.key}{self.op}{value}" if self.key else str(value)


@dataclass(frozen=True)
class Expr:
    """Arithmetic in an argument (`4*f`, `(f+1)/2`, `-1`) or a loop's tuple `(64, 3, 1)`: evaluated by
    lowering once the variables are known. `op` is one of + - * / neg tuple."""

    op: str
    operands: tuple[Argument, ...]

    def text(self) -> str:
        parts = [a.text() for a in self.operands]
        if self.op == "neg":
            return f"-{parts[0]}"
        if self.op == "tuple":
            return "(" + ", ".join(parts) + ")"
        return f"({parts[0]}{self.op}{parts[1]})"


@dataclass(frozen=True)
class Command:
    """`word arg arg ... [branch | branch] as name`: a layer, an activation used as a layer, a merge,
    a user block's use, or a directive."""

    word: str
    args: tuple[Argument, ...]
    span: Span  # the word's span
    end: Span  # the span of the whole statement
    branches: tuple[tuple[Command | Repeat, ...], ...] | None = None  # `add [a | b]`; None without brackets
    branch_spans: tuple[Span, ...] = ()  # where each branch starts (its `[` or `|`)
    alias: str | None = None  # `as NAME`: the name given to this statement's output
    alias_span: Span | None = None


@dataclass(frozen=True)
class Repeat:
    """`repeat N [body]`, `repeat [body] for var in v1,v2,...` or `... for f, n in (64,3), (128,4)`."""

    body: tuple[Command | Repeat | Define, ...]
    span: Span
    count: Argument | None = None
    var: str | None = None  # the first (usually only) loop variable
    var_span: Span | None = None
    values: tuple[Argument, ...] = ()  # one per iteration; a tuple Expr when there are several variables
    more_vars: tuple[tuple[str, Span], ...] = ()  # `for f, n, s in ...`: the variables after the first

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.var, *(name for name, _ in self.more_vars)) if self.var else ()


@dataclass(frozen=True)
class Param:
    """One parameter of a user block: `f`, or `s=1` with its default."""

    name: str
    span: Span
    default: Argument | None = None


@dataclass(frozen=True)
class Define:
    """`def NAME params [body]`: a user block, used later as `NAME args`."""

    name: str
    span: Span  # the name's span
    params: tuple[Param, ...]
    body: tuple[Command | Repeat | Define, ...]


Statement = Union[Command, Repeat, Define]


# ---------------------------------------------------------------- layers

REGISTRY: dict[str, type[Layer]] = {}
"""kind -> Layer class, filled by subclassing."""

WORDS: dict[str, type[Layer]] = {}
"""statement word -> Layer class (`conv` -> Conv, `relu` -> Activation, ...)."""


class Layer(BaseModel):
    """Base of every layer node: data and validation only.

    A subclass declares `kind` (a Literal), its fields, a `syntax` saying how arguments bind to
    fields, and `apply`, which describes the layer as calls on a graph of primitive ops. The
    analyzer, the compiler and the emitter each provide a graph, so `apply` is written once.
    Floats are finite (`l2=1e309` is inf): whatever `check` accepts, Keras must build and train.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: str
    span: Span | None = None
    tap: str | None = None  # `... as NAME`: the output is bound to this (lowering-unique) name

    words: ClassVar[tuple[str, ...] | None] = None  # the statement words; None: the kind; (): none (made by lowering)
    internal: ClassVar[frozenset[str]] = frozenset({"kind", "span", "tap"})  # fields no argument may set
    takes_branches: ClassVar[bool] = False  # `add [a | b]`: the layer holds sub-networks
    takes_names: ClassVar[int] = 0  # `mha 8 64 memory`: up to this many bare words name tensors (`refs`)
    own_function: ClassVar[bool] = False  # `netdsl emit` writes each use as a call of a function of its own
    restarts_path: ClassVar[bool] = False  # `use NAME`: what follows no longer comes after the layers above
    keeps_predictions: ClassVar[bool] = False  # acts only while training (dropout): harmless after the softmax
    syntax: ClassVar[Any] = None  # a netdsl.layers.base.Syntax
    summary: ClassVar[str] = ""
    is_head_candidate: ClassVar[bool] = False  # its units can be a classifier's scores (dense): E506 points here
    ends_feature_extractor: ClassVar[bool] = False  # global pooling or flatten: `pretrained run=` cuts here

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        kind = cls.model_fields["kind"].default
        if isinstance(kind, str):
            REGISTRY[kind] = cls
            for word in cls.words if cls.words is not None else (kind,):
                WORDS[word] = cls

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        """Describe this layer as primitive ops on `graph`; return the output tensor."""
        raise NotImplementedError

    def output_activation(self) -> str | None:
        """The activation this layer's output ends in (`softmax`, `relu`, ...), or None for a linear output."""
        return None

    def activations(self) -> tuple[str, ...]:
        """Every activation this layer applies, in order (W401 looks for the classifier's softmax here)."""
        return ()

    def raw_input_note(self) -> str | None:
        """What to call this layer in W403 when it is the very first one and so acts on raw input
        (`dropout`, `relu`), or None when it belongs there."""
        return None

    @classmethod
    def from_word(cls, word: str) -> dict[str, Any]:
        """Fields implied by the statement's word itself (`relu` -> function='relu')."""
        return {}

    def emit_name(self) -> str:
        """The name of the function `netdsl emit` writes for this layer's structure."""
        return f"{self.kind}_layer"


# ---------------------------------------------------------------- directives

# The training vocabulary, spelled once: the `train`/`phase` words (lowering), the CLI's choices and
# the trainer's tables are all derived from these (a test checks the trainer covers every name).
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
Schedule = Literal["constant", "step", "cosine", "onecycle"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
MAX_SEED = 2**32 - 1  # numpy's (and so keras.utils.set_random_seed's) largest seed
MAX_BATCH = 2**31 - 1  # a batch index fits every framework's int32 and int64
SCHEDULES: tuple[str, ...] = get_args(Schedule)


class Augment(BaseModel):
    """Training-time augmentation, the seed's ImageDataGenerator options as Keras layers. Each field's
    description is its `netdsl train --<field>` help; AUGMENT_FIELDS is the vocabulary."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    shift: float = Field(0.0, ge=0, lt=1, description="Augment: random shift (fraction).")
    flip: bool = Field(False, description="Augment: random horizontal flips.")
    vflip: bool = Field(False, description="Augment: random vertical flips.")
    shear: float = Field(0.0, ge=0, lt=1, description="Augment: random shear.")
    zoom: float = Field(0.0, ge=0, lt=1, description="Augment: random zoom (fraction).")
    rotation: float = Field(0.0, ge=0, le=1, description="Augment: random rotation (fraction of a turn).")


AUGMENT_FIELDS: tuple[str, ...] = tuple(Augment.model_fields)


class PhaseConfig(BaseModel):
    """One `phase` line: a stretch of training with its own optimizer, learning rate and freezing (the seed's
    fine-tune: train the head on a frozen backbone, then unfreeze the last stage at a tenth of the rate).
    Fields left out come from the `train` line; `freeze` (as on `pretrained`) from the `pretrained` line."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    epochs: PositiveInt
    optimizer: Optimizer | None = None
    lr: float | None = Field(None, gt=0, le=10)
    schedule: Schedule | None = None
    freeze: int | str | None = None
    span: Span | None = None


class TrainConfig(BaseModel):
    """Training defaults written in the spec (`train ...`, `augment ...`); the CLI overrides them.
    Bounded so that what `check` accepts trains: numpy seeds are 32-bit, tf.data batch sizes int64."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    optimizer: Optimizer = "adam"
    lr: float = Field(0.001, gt=0, le=10)
    schedule: Schedule = "constant"
    epochs: PositiveInt = 10
    batch: int = Field(32, ge=1, le=MAX_BATCH)
    momentum: float = Field(0.9, ge=0, lt=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    patience: int | None = Field(None, ge=1)
    validation: float = Field(0.1, ge=0, lt=1)  # fraction of the training images held out, unless the data has a split
    seed: int | None = Field(None, ge=0, le=MAX_SEED)  # None: a fresh seed per run (recorded in config.json)
    augment: Augment = Augment()
    phases: tuple[PhaseConfig, ...] = ()  # `phase` lines, run in order by one `netdsl train`; () is one phase


class Budget(BaseModel):
    """`assert params < 2M`: a metric, a comparison and a limit in the metric's unit (a count, bytes or
    pixels); netdsl/budgets.py measures it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    metric: str
    op: Literal["<", "<=", ">", ">=", "=="]
    limit: int
    text: str  # as written, for messages
    span: Span | None = None  # None for a budget given on the command line


class InputSpec(BaseModel):
    """A further input of a multi-input network (`input 10 as meta`); the first is Network.input_shape."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    shape: tuple[PositiveInt, ...]
    dtype: Literal["float32", "int32"] = "float32"
    name: str
    span: Span | None = None


class Network(BaseModel):
    """A lowered program: input shape(s), a list of layers (merges and blocks nest theirs), training defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    input_shape: tuple[PositiveInt, ...] | None = None
    input_span: Span | None = None
    input_dtype: Literal["float32", "int32"] = "float32"  # `input 200 int`: token ids for `embed`
    input_name: str | None = None  # `input 32x32x3 as image`
    extra_inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[str, ...] = ()  # `output a b`: the named tensors the model returns; () is the last one
    layers: list[AnyLayer] = Field(default_factory=list)  # noqa: F821  (completed in netdsl.layers)
    training: TrainConfig = TrainConfig()
    name: str = "model"
    file: str | None = None
    source: str = Field("", repr=False)  # the spec's text, for messages and for run directories
    budgets: tuple[Budget, ...] = ()  # `assert ...` lines: checked by `netdsl check` and before training
    _provenance: Provenance | None = PrivateAttr(None)  # not data: neither compared, validated nor serialised

    @property
    def provenance(self) -> Provenance | None:
        """Where each layer came from, when lowering made this network (None for one built in Python)."""
        return self._provenance

    def traced(self, provenance: Provenance | None) -> Network:
        """A copy carrying `provenance` (copies made with `model_copy` keep it, JSON does not)."""
        copy = self.model_copy()
        copy._provenance = provenance
        return copy

    def __eq__(self, other: object) -> bool:
        """Equal contents: a network read back from JSON equals the parsed one, without its provenance."""
        return self.__dict__ == other.__dict__ if isinstance(other, Network) else NotImplemented

    def with_input(self, shape: tuple[int, ...]) -> Network:
        """A copy with another input shape (`netdsl check --input`)."""
        return self.model_copy(update={"input_shape": tuple(shape), "input_span": None})
