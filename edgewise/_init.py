"""Re-initialise a model the way its constructor does, from an explicit seed (machinery of
:mod:`edgewise.sensitivity`).

A Monte-Carlo sensitivity over initialisations is only as good as the initialisations: torchvision's
ResNets draw their convolutions from kaiming_normal_(mode="fan_out") and set BatchNorm to (1, 0), not
torch's per-layer default (kaiming_uniform_(a=√5)), and the effective field they give differs a lot.
:func:`plan` decides once, for a model, which initialisation to use; :func:`apply` then draws one
initialisation per seed. The methods, in the order ``init="auto"`` tries them:

* ``"builder"`` — the model came from a known builder: ``torchvision.models.get_model(NAME, weights=None)``
  or ``timm.create_model(NAME, pretrained=False, **kwargs)``. The model gets, tensor by tensor, the state of
  the builder run again under the seed: by replaying the builder's recorded draws and writes straight into the
  model's tensors (recorded once per builder, checked bit for bit against a real build; draws that the builder
  overwrites are taken from the random stream as cheap integer draws), else by building it and copying.
  The builder is known from the :data:`BUILDER_ATTR` attribute that :func:`edgewise.models.load` sets
  (:func:`mark_builder`), else recognised: a timm model's ``pretrained_cfg["architecture"]``, or a
  torchvision model class whose
  architecture matches exactly one builder of its module (shapes compared on the meta device; a constructor
  keyword that changes only the initialisation, such as ``zero_init_residual``, cannot be seen this way).
  A tensor the builder does not make, or makes with another shape (a remedy's coordinate or global
  weights, a replaced classifier), gets its layer's ``reset_parameters`` (with an :class:`EdgewiseWarning`
  unless the layer is torch's or edgewise's, whose constructor does just that).
* ``"module"`` — a module class of the model that is not torch's or edgewise's defines an init method:
  ``init_weights``, ``initialize_weights``, ``_initialize_weights`` or ``_init_weights``, callable without
  arguments (or taking one module, the ``self.apply(self._init_weights)`` idiom, then applied to every
  submodule), or ``reset_parameters``. As in a constructor, every layer is first reset to its default, then
  each such method runs, children before parents. Only one method per module runs (the first of that list
  which fits), so an ``init_weights`` that itself applies ``_init_weights`` is not run twice.
* ``"default"`` — every submodule's ``reset_parameters`` (torch's layer defaults). That is the model's own
  initialisation when all its modules are torch.nn or edgewise classes (spec nets from
  :func:`edgewise.nets.from_spec`) or of another package in :data:`DEFAULT_PACKAGES`; otherwise ``"auto"``
  says, with an :class:`EdgewiseWarning`, that the model's own initialisation is unknown.
* ``"std"`` — ``std=σ``: weights with ≥ 2 dims from N(0, σ²), their biases 0, everything else default.
  It overrides the others.

Every draw happens under ``torch.random.fork_rng`` seeded with the given seed: the global random state is
left as it was, and the same seed gives the same weights.
"""

from __future__ import annotations

import inspect
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from .errors import EdgewiseError, EdgewiseWarning

__all__ = ["INITS", "BUILDER_ATTR", "InitPlan", "mark_builder", "keep_builder", "builder_of", "plan", "apply",
           "reinit_", "shared_draws", "zero_scales", "zero_norms"]

#: the values of ``init=``
INITS = ("auto", "default", "builder", "module")
#: attribute of a built module that names its builder: ``(library, name, kwargs)``
BUILDER_ATTR = "_edgewise_builder"
#: init methods a model's own classes may define, in the order one is chosen per module
INIT_METHODS = ("init_weights", "initialize_weights", "_initialize_weights", "_init_weights")
_LIBRARIES = ("torchvision", "timm")


@dataclass(frozen=True)
class InitPlan:
    """How a model is re-initialised: decided once by :func:`plan`, drawn per seed by :func:`apply`.

    Attributes:
        method: ``"builder"``, ``"module"``, ``"default"`` or ``"std"``.
        builder: ``(library, name, kwargs)`` for ``"builder"``.
        calls: ``(module name, method name, "call" | "apply")`` for ``"module"``, children before parents.
        std: the weights' standard deviation for ``"std"``.
        defaulted: tensors the builder does not make, which keep their layer's default initialisation.
    """

    method: str
    builder: tuple | None = None
    calls: tuple = ()
    std: float | None = None
    defaulted: tuple = field(default=())


def mark_builder(module: nn.Module, library: str, name: str, kwargs: dict | None = None) -> nn.Module:
    """Record on ``module`` that ``library``'s builder ``name`` (with ``kwargs``) made it; returns ``module``.

    ``library`` is ``"torchvision"`` (``get_model(name, weights=None, **kwargs)``) or ``"timm"``
    (``create_model(name, pretrained=False, **kwargs)``). Copies (``copy.deepcopy``, remedies) keep it.
    """
    if library not in _LIBRARIES:
        raise EdgewiseError(f"mark_builder: unknown library {library!r}; expected one of {', '.join(_LIBRARIES)}")
    setattr(module, BUILDER_ATTR, (library, str(name), dict(kwargs or {})))
    return module


def keep_builder(source: nn.Module, copy: nn.Module) -> nn.Module:
    """``copy`` with ``source``'s builder mark (a ``torch.fx.GraphModule``'s deepcopy drops attributes)."""
    if hasattr(source, BUILDER_ATTR) and not hasattr(copy, BUILDER_ATTR):
        setattr(copy, BUILDER_ATTR, getattr(source, BUILDER_ATTR))
    return copy


def _build(builder: tuple, device=None) -> nn.Module:
    library, name, kwargs = builder
    if device is not None:
        with torch.device(device):
            return _build(builder)
    if library == "torchvision":
        import torchvision

        return torchvision.models.get_model(name, weights=None, **kwargs)
    import timm

    return timm.create_model(name, pretrained=False, **kwargs)


def _shapes(module: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict(keep_vars=True).items()}


def _recognise(model: nn.Module) -> tuple | None:
    """The builder of a torchvision or timm model built outside edgewise, if its architecture matches one exactly."""
    mod = type(model).__module__
    candidates = []
    cfg = getattr(model, "pretrained_cfg", None)
    if mod.startswith("timm.") and isinstance(cfg, dict) and cfg.get("architecture"):
        n = getattr(model, "num_classes", None)
        candidates = [("timm", cfg["architecture"], {})]
        if isinstance(n, int):
            candidates.append(("timm", cfg["architecture"], {"num_classes": n}))
    elif mod.startswith("torchvision.models."):
        try:
            import torchvision

            names = torchvision.models.list_models()
            candidates = [("torchvision", n, {}) for n in names
                          if getattr(torchvision.models.get_model_builder(n), "__module__", None) == mod]
        except Exception:  # an old or broken torchvision: nothing recognised
            return None
    if not candidates:
        return None
    key = (type(model), tuple(sorted(_shapes(model).items())), tuple((c[1], tuple(c[2].items())) for c in candidates))
    if key not in _RECOGNISED:  # a name (never weights) per architecture: the meta builds take ~1 s for ResNets
        _RECOGNISED[key] = _match(model, candidates)
    return _RECOGNISED[key]


_RECOGNISED: dict = {}


def _match(model: nn.Module, candidates: list) -> tuple | None:
    found = []
    for cand in candidates:
        try:
            with torch.random.fork_rng(devices=[]):
                ref = _build(cand, device="meta")
        except Exception:  # a builder that cannot run on the meta device (or at all) is not this model's
            continue
        if type(ref) is type(model) and _fits(_shapes(ref), model):
            found.append(cand)
            if cand[0] == "timm":
                break
    return found[0] if len(found) == 1 or (found and found[0][0] == "timm") else None


def _fits(theirs: dict, model: nn.Module) -> bool:
    """Whether ``model`` is what a builder makes (tensor names and shapes ``theirs``), give or take the tensors an
    edgewise layer adds (a remedy's coordinate or global weights)."""
    mine = _shapes(model)
    return all(mine.get(k) == s for k, s in theirs.items()) and all(
        type(_owner_module(model, k)).__module__.startswith("edgewise.") for k in mine if k not in theirs)


def builder_of(model: nn.Module) -> tuple | None:
    """``(library, name, kwargs)`` of the builder that made ``model``, or None if none is known."""
    known = getattr(model, BUILDER_ATTR, None)
    if known is not None:
        library, name, *rest = known
        return library, name, dict(rest[0]) if rest else {}
    return _recognise(model)


#: packages whose layer classes initialise with torch's layer defaults (no nn.init call in their source):
#: torch's, edgewise's, and efficientnet_lite_pytorch (edgewise's packaged trained EfficientNet-Lite0)
DEFAULT_PACKAGES = ("torch", "edgewise", "builtins", "efficientnet_lite_pytorch")


def _ours(cls: type) -> bool:
    """Whether a class initialises with ``reset_parameters`` alone (a class of :data:`DEFAULT_PACKAGES`)."""
    return cls.__module__.split(".")[0] in DEFAULT_PACKAGES


def _owner(cls: type, name: str) -> type | None:
    """The class in ``cls``'s MRO that defines attribute ``name``."""
    return next((k for k in cls.__mro__ if name in vars(k)), None)


def _own_method(mod: nn.Module) -> tuple[str, str] | None:
    """``(method name, "call" | "apply")`` of the init method a foreign module class defines, if one fits."""
    for name in INIT_METHODS:
        owner = _owner(type(mod), name)
        fn = getattr(mod, name, None)
        if owner is None or _ours(owner) or not callable(fn):
            continue
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue
        try:
            sig.bind()
            return name, "call"
        except TypeError:
            pass
        try:
            sig.bind(mod)
            return name, "apply"
        except TypeError:
            continue
    return None


def _post_order(module: nn.Module, prefix: str = ""):
    for name, child in module.named_children():
        yield from _post_order(child, f"{prefix}.{name}" if prefix else name)
    yield prefix, module


def _module_calls(model: nn.Module) -> tuple[tuple, bool]:
    """The init-method calls of ``model`` (children before parents), and whether a foreign
    ``reset_parameters`` exists (the default pass runs it)."""
    calls, resets, seen = [], False, set()
    for name, mod in _post_order(model):
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        own = _own_method(mod)
        if own is not None:
            calls.append((name, *own))
        owner = _owner(type(mod), "reset_parameters")
        resets = resets or (owner is not None and not _ours(owner))
    return tuple(calls), resets


def _all_ours(model: nn.Module) -> bool:
    return all(_ours(type(m)) for m in model.modules())


def _builder_plan(model: nn.Module, builder: tuple) -> InitPlan:
    """The builder plan; an error if the builder cannot run or shares no tensor with the model."""
    try:
        with torch.random.fork_rng(devices=[]):
            try:
                ref = _build(builder, device="meta")
            except Exception:  # a builder that computes with its tensors: build it for real
                ref = _build(builder)
    except Exception as e:
        raise EdgewiseError(f"init='builder': {builder[0]}:{builder[1]} cannot be built again "
                            f"({type(e).__name__}: {e}); pass init='default'") from None
    theirs, mine = _shapes(ref), _shapes(model)
    shared = [k for k, s in mine.items() if theirs.get(k) == s]
    if not shared:
        raise EdgewiseError(f"init='builder': {type(model).__name__} shares no tensor with what "
                            f"{builder[0]}:{builder[1]} builds; pass init='default'")
    defaulted = tuple(k for k in mine if k not in shared)
    foreign = [k for k in defaulted if not _ours(type(_owner_module(model, k)))]
    if foreign:
        warnings.warn(f"re-initialising {type(model).__name__} with {builder[0]}:{builder[1]}'s initialisation: "
                      f"{len(foreign)} tensor(s) it does not make ({', '.join(foreign[:4])}"
                      f"{', …' if len(foreign) > 4 else ''}) get their layer's default reset_parameters",
                      EdgewiseWarning, stacklevel=4)
    return InitPlan("builder", builder=builder, defaulted=defaulted)


def _owner_module(model: nn.Module, key: str) -> nn.Module:
    owner = key.rpartition(".")[0]
    return model.get_submodule(owner) if owner else model


def plan(model: nn.Module, init: str = "auto", std: float | None = None) -> InitPlan:
    """Decide how ``model`` is re-initialised (see the module docstring); warns here, once, not per seed.

    Args:
        model: the module to re-initialise.
        init: ``"auto"`` (builder if known, else the model's own init methods, else torch's defaults with an
            :class:`EdgewiseWarning` unless the model is built only of torch.nn / edgewise layers),
            ``"builder"``, ``"module"`` or ``"default"``.
        std: a fixed N(0, std²) for every weight with ≥ 2 dims; overrides ``init`` (which must then be
            ``"auto"``).
    """
    if init not in INITS:
        raise EdgewiseError(f"init={init!r}: expected one of {', '.join(map(repr, INITS))}")
    if std is not None:
        if init != "auto":
            raise EdgewiseError(f"init={init!r} and std={std!r}: std= draws every weight from N(0, std²), "
                                "whatever the initialisation; pass one of them")
        return InitPlan("std", std=std)
    if init == "default":
        return InitPlan("default")
    if init in ("auto", "builder"):
        builder = builder_of(model)
        if builder is not None:
            return _builder_plan(model, builder)
        if init == "builder":
            raise EdgewiseError(f"init='builder': no builder is known for {type(model).__name__}; load it as "
                                "'torchvision:NAME' or 'timm:NAME' (edgewise.models.load), or pass init='auto'")
    calls, resets = _module_calls(model)
    if calls or resets:
        return InitPlan("module", calls=calls)
    if init == "module":
        raise EdgewiseError(f"init='module': no module of {type(model).__name__} defines its own init method "
                            f"({', '.join(INIT_METHODS)} or reset_parameters); pass init='auto' or 'default'")
    if not _all_ours(model):
        warnings.warn(f"the own initialisation of {type(model).__name__} is unknown (no known builder and no init "
                      "method): it is re-initialised with torch's default reset_parameters of each layer; load "
                      "it as 'torchvision:NAME' or 'timm:NAME', or pass init='default' to say that is meant",
                      EdgewiseWarning, stacklevel=3)
    return InitPlan("default")


def _draw_builder(builder: tuple, state: dict, seed: int | None = None) -> set[str]:
    """Draw a fresh build's tensors into ``state`` (the caller has seeded the generator with ``seed``) where names
    and shapes agree; returns those names. By the builder's recorded :class:`_Replay` when there is one (its draws
    kept for ``seed`` inside :func:`shared_draws`), else by building."""
    replay = _replay(builder)
    if replay is not None:
        cache = _SHARED[-1] if _SHARED and seed is not None else None
        if cache is None:
            return replay.run(state)
        key = (repr(builder), seed)
        drawn = cache.get(key)
        if drawn is None:
            if not cache.room(key, replay.nbytes):  # drawn straight into the model, as outside the block
                return replay.run(state)
            drawn = cache.put(key, replay.draw(), replay.nbytes)
        return replay.fill(state, drawn)
    ref = _build(builder).state_dict()
    covered = set()
    for k, v in state.items():
        if k in ref and tuple(ref[k].shape) == tuple(v.shape):
            v.data.copy_(ref[k])
            covered.add(k)
    return covered


class _Draws:
    """Builder draws by (builder, seed) for the seeds in ``keep``, kept while they fit in ``budget`` bytes."""

    def __init__(self, keep, budget: int):
        self.keep, self.budget, self.used, self.items = frozenset(keep), budget, 0, {}
        self.hits = self.misses = 0

    def get(self, key):
        hit = self.items.get(key)
        self.hits += hit is not None
        self.misses += hit is None
        return hit

    def room(self, key, size: int) -> bool:
        return key[1] in self.keep and self.used + size <= self.budget

    def put(self, key, drawn: dict, size: int) -> dict:
        self.items[key], self.used = drawn, self.used + size
        return drawn

    def close(self) -> None:
        """Let go of every kept draw and keep no more (their memory is needed elsewhere)."""
        self.items, self.used, self.budget = {}, 0, 0


_SHARED: list[_Draws] = []


#: the most a :func:`shared_draws` block keeps (ResNet-50's 8 initialisations: 0.8 GB)
SHARED_DRAW_BYTES = 1 << 30


@contextmanager
def shared_draws(seeds, budget: int | None = None):
    """Within the block, a builder initialisation drawn for one of ``seeds`` is kept and copied into the next
    model that asks for the same builder and seed, instead of drawn again: a padding remedy's copy of a model
    gets, seed for seed, the weights the original got (every name and shape it shares with the builder's), bit
    for bit. ``budget``: bytes kept at most (default: :data:`SHARED_DRAW_BYTES` or an eighth of
    :func:`edgewise.limits.budget`, the smaller); seeds beyond it are drawn as outside the block. Inside another
    block, that block's store is used. Yields the store (``hits``, ``misses``, ``used`` bytes)."""
    if _SHARED:
        yield _SHARED[-1]
        return
    if budget is None:
        from .limits import budget as memory

        budget = min(SHARED_DRAW_BYTES, memory() // 8)
    cache = _Draws(seeds, budget)
    _SHARED.append(cache)
    try:
        yield cache
    finally:
        _SHARED.remove(cache)


#: aten in-place ops that set every element of their tensor without reading it
_OVERWRITES = ("fill_", "zero_", "uniform_", "normal_", "random_")
_REPLAYS: dict = {}


@dataclass
class _Step:
    """``op(tensor, *args, **kwargs)`` on the state tensor ``key``, or (``key`` None) on a scratch tensor of
    ``shape``/``dtype``: a draw whose values nothing keeps, run for what it takes from the random stream."""

    op: object
    key: str | None
    args: tuple
    kwargs: dict
    shape: tuple
    dtype: torch.dtype


class _Replay:
    """A builder's initialisation without the builder: the recorded operations that draw random numbers or write
    its state, in order, applied straight to a model's tensors. A draw that is overwritten before it is read (a
    layer's default ``reset_parameters`` that the builder's own init then replaces) still advances the generator
    as it did, by cheaper integer draws (see :func:`_skip`). :func:`_replay` checks every replay against a real
    build, bit for bit."""

    def __init__(self, steps: list[_Step], constants: dict, shapes: dict, dtypes: dict):
        self.steps, self.constants, self.shapes, self.dtypes = steps, constants, shapes, dtypes
        self._scratch = {}  # (shape, dtype) -> where the dead draws go, and the live ones of tensors a model lacks

    @property
    def nbytes(self) -> int:
        """The size of :meth:`draw`'s tensors."""
        return sum(math.prod(shape) * self.dtypes[k].itemsize for k, shape in self.shapes.items()
                   if k not in self.constants)

    def draw(self) -> dict[str, torch.Tensor]:
        """Every tensor the builder draws or writes, in fresh memory (what :meth:`run` writes into a model with
        all of them)."""
        out = {k: torch.empty(shape, dtype=self.dtypes[k]) for k, shape in self.shapes.items()
               if k not in self.constants}
        self.run(out)
        return out

    def fill(self, state: dict, drawn: dict) -> set[str]:
        """Copy :meth:`draw`'s tensors (and the constants) into the tensors of ``state`` with the recorded names
        and shapes: what :meth:`run` would have drawn into them; returns their names."""
        mine = [k for k, v in state.items() if k in self.shapes and tuple(v.shape) == self.shapes[k]]
        for k in mine:
            state[k].data.copy_(self.constants[k] if k in self.constants else drawn[k])
        return set(mine)

    def run(self, state: dict) -> set[str]:
        """Draw into the tensors of ``state`` with the recorded names and shapes (one of another dtype, device or
        layout through a float buffer); returns their names."""
        mine = {k: v.data for k, v in state.items() if k in self.shapes and tuple(v.shape) == self.shapes[k]}
        out = {k: v if v.dtype == self.dtypes[k] and v.device.type == "cpu" and v.is_contiguous()
               else torch.empty(v.shape, dtype=self.dtypes[k]) for k, v in mine.items() if k not in self.constants}
        for s in self.steps:
            target = out.get(s.key)
            if target is None:
                target = self._scratch.get((s.shape, s.dtype))
                if target is None:
                    target = self._scratch[(s.shape, s.dtype)] = torch.empty(s.shape, dtype=s.dtype)
            s.op(target, *s.args, **s.kwargs)
        for k, v in mine.items():
            if k in self.constants:
                v.copy_(self.constants[k])
            elif out[k] is not v:
                v.copy_(out[k])
        return set(mine)


class _Recorder(TorchDispatchMode):
    """Every aten call, with its arguments (kept alive, so no storage is reused while recording)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.calls.append((func, args, kwargs))
        return func(*args, **kwargs)


def _replay(builder: tuple) -> _Replay | None:
    """The builder's recorded replay (once per builder), or None when it cannot be replayed exactly."""
    key = repr(builder)
    if key not in _REPLAYS:
        try:
            _REPLAYS[key] = _record(builder)
        except Exception:  # anything unexpected while recording: build instead
            _REPLAYS[key] = None
    return _REPLAYS[key]


def _record(builder: tuple) -> _Replay | None:
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        with _Recorder() as rec:
            model = _build(builder)
        state = model.state_dict(keep_vars=True)
        owner = {}
        for k, v in state.items():
            ptr = v.untyped_storage().data_ptr()
            if (ptr in owner or v.numel() == 0 or v.storage_offset() or not v.is_contiguous()
                    or v.untyped_storage().nbytes() != v.numel() * v.element_size()):
                return None  # shared, empty or partial storages: build instead
            owner[ptr] = k
        steps = _steps(rec.calls, owner, state)
        if steps is None:
            return None
        written = {s.key for s in steps}
        replay = _Replay(steps, {k: v.detach().clone() for k, v in state.items() if k not in written},
                         {k: tuple(v.shape) for k, v in state.items()}, {k: v.dtype for k, v in state.items()})
        torch.manual_seed(1)  # another seed than the recorded one: a draw taken for a constant would show
        check = _build(builder).state_dict()
        mine = {k: torch.empty_like(v) for k, v in check.items()}
        torch.manual_seed(1)
        replay.run(mine)
    return replay if all(torch.equal(mine[k], v) for k, v in check.items()) else None


def _draws(op) -> bool:
    """Whether aten ``op`` takes random numbers."""
    return torch.Tag.nondeterministic_seeded in op.tags


def _steps(calls: list, owner: dict, state: dict) -> list[_Step] | None:
    """The replay's steps from the recorded calls; None if a write to the state reads another tensor or writes
    part of one, or a random draw is not in place."""
    steps, last = [], {}  # last: state key -> index in steps of its last overwrite
    for func, args, kwargs in calls:
        writes = [args[i] for i, a in enumerate(func._schema.arguments[:len(args)])
                  if a.alias_info is not None and a.alias_info.is_write]
        if not writes:
            if _draws(func):
                return None  # an out-of-place draw (torch.randn ...): its values may end up anywhere
            continue
        target = writes[0]
        key = owner.get(target.untyped_storage().data_ptr()) if isinstance(target, torch.Tensor) else None
        if key is None and not _draws(func):
            continue  # a write to a temporary tensor
        reads = any(isinstance(a, torch.Tensor) for a in (*args[1:], *kwargs.values()))
        if key is not None and (len(writes) > 1 or reads or target.storage_offset() or tuple(target.shape)
                                != tuple(state[key].shape) or target.stride() != state[key].stride()):
            return None  # reads another tensor, or writes part of one
        if key is not None and func._schema.name.split("::")[-1] in _OVERWRITES:
            last[key] = len(steps)
        steps.append(_Step(func, key, tuple(args[1:]), dict(kwargs), tuple(target.shape), target.dtype))
    kept, words = [], 0  # words: 32-bit numbers that dead float32 uniform_ draws take, not yet taken
    for i, s in enumerate(steps):
        dead = s.key is not None and i < last.get(s.key, -1)  # overwritten before anything reads it
        if dead and s.op is torch.ops.aten.uniform_.default and s.dtype == torch.float32:
            words += math.prod(s.shape)
            continue
        if dead and not _draws(s.op):
            continue
        if _draws(s.op):  # (a write that draws nothing may go before the skipped numbers)
            kept += _skip(words)
            words = 0
        kept.append(_Step(s.op, None, s.args, s.kwargs, s.shape, s.dtype) if dead else s)  # (dead: into scratch)
    return kept + _skip(words)


#: int64 numbers one dead-draw step takes at most (its scratch: 8 MiB)
SKIP_CHUNK = 1 << 20


def _skip(words: int) -> list[_Step]:
    """Steps that take ``words`` 32-bit numbers from the random stream, as that many float32 ``uniform_`` values
    do (one each), at the least cost: int64 ``random_`` (two each: half the calls of the generator, 12 % faster),
    in chunks of :data:`SKIP_CHUNK` into one scratch tensor, and one uint8 ``random_`` (one each) for an odd one."""
    pairs, odd = divmod(words, 2)
    full, rest = divmod(pairs, SKIP_CHUNK)
    draw = torch.ops.aten.random_.default
    return ([_Step(draw, None, (), {}, (SKIP_CHUNK,), torch.int64)] * full
            + [_Step(draw, None, (), {}, (n,), dt) for n, dt in ((rest, torch.int64), (odd, torch.uint8)) if n])


def always_zero(p: InitPlan, model: nn.Module, names: list[str]) -> bool:
    """Whether plan ``p`` makes every tensor ``names`` of ``model`` zero in every initialisation, whatever the
    seed: its builder's recorded replay writes each last with ``zero_`` (or a zero ``fill_``), or keeps it as a
    zero constant (torchvision's ViT head). False where that cannot be known without drawing (other plans)."""
    replay = _replay(p.builder) if p.method == "builder" else None
    if replay is None or not names:
        return False
    state = model.state_dict(keep_vars=True)
    for k in names:
        if k in p.defaulted or k not in state or replay.shapes.get(k) != tuple(state[k].shape):
            return False
        if k in replay.constants:
            if replay.constants[k].count_nonzero():
                return False
            continue
        last = next((s for s in reversed(replay.steps) if s.key == k), None)
        if last is None or not (last.op is torch.ops.aten.zero_.default or last.op is torch.ops.aten.fill_.Scalar
                                and last.args and last.args[0] == 0):
            return False
    return True


#: normalisation layers whose weight scales their output (a zero weight leaves its output the bias alone)
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def zero_scales(p: InitPlan, model: nn.Module) -> list[str]:
    """The normalisation layers of ``model`` (batch, instance, group and layer norms) whose weight plan ``p`` makes
    zero in every initialisation (:func:`always_zero`: a builder that writes it with zeros, as timm's and
    torchvision's ``zero_init_last`` / ``zero_init_residual`` do for the last norm of each residual branch): each
    outputs its bias whatever its input, so nothing before it on that path moves the output at initialisation."""
    if p.method != "builder":
        return []
    return [n for n, m in model.named_modules() if isinstance(m, _NORMS) and isinstance(m.weight, torch.Tensor)
            and always_zero(p, model, [f"{n}.weight"])]


def steady(p: InitPlan, model: nn.Module, fixed=()) -> dict[str, torch.Tensor]:
    """The parameters of ``model`` that every initialisation of plan ``p`` gives the same values, with those values:
    its builder's constants (a layer scale of 1e-6, a zero bias) and the parameters it leaves as they were
    (``fixed``, as :func:`apply` returns them)."""
    params = dict(model.named_parameters())
    replay = _replay(p.builder) if p.method == "builder" else None
    out = {k: v for k, v in (replay.constants if replay is not None else {}).items()
           if k in params and k not in p.defaulted and tuple(v.shape) == tuple(params[k].shape)}
    out.update({k: params[k].detach() for k in fixed if k in params})
    return out


def zero_norms(model: nn.Module) -> list[str]:
    """The normalisation layers of ``model`` whose weight is zero now (every element)."""
    return [n for n, m in model.named_modules() if isinstance(m, _NORMS) and isinstance(m.weight, torch.Tensor)
            and not m.weight.detach().count_nonzero()]


def _rng(model: nn.Module):
    devices = sorted({t.device.index or 0 for t in model.state_dict().values() if t.device.type == "cuda"})
    return torch.random.fork_rng(devices=devices)


def _reset(model: nn.Module, only: set | None = None) -> set[str]:
    """``reset_parameters`` of every submodule (or of those named in ``only``); the parameters covered."""
    covered = set()
    for mod_name, mod in model.named_modules():
        if only is not None and mod_name not in only:
            continue
        reset = getattr(mod, "reset_parameters", None)
        if callable(reset):
            reset()
            covered.update(f"{mod_name}.{n}" if mod_name else n for n, _ in mod.named_parameters(recurse=False))
    return covered


def _has_weight(model: nn.Module, name: str) -> bool:
    """Whether parameter ``name`` is the bias of a module whose weight has ≥ 2 dims (conv, linear)."""
    w = getattr(_owner_module(model, name), "weight", None)
    return name.rpartition(".")[2] == "bias" and isinstance(w, torch.Tensor) and w.ndim >= 2


def _derived(seed: int) -> int:
    """A second seed from ``seed`` (for tensors a builder does not make), independent of the first."""
    return int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(seed ^ 0x5EED_1715)))


def _seeder(model: nn.Module):
    """``torch.manual_seed`` for a model with tensors off the CPU; for a model on the CPU the CPU generator's
    own ``manual_seed``: the same stream, without queueing lazy seeds for every accelerator, which formats the
    Python stack each time (a default report seeds about 800 times)."""
    on_cpu = all(t.device.type == "cpu" for t in model.state_dict().values())
    return torch.random.default_generator.manual_seed if on_cpu else torch.manual_seed


def apply(model: nn.Module, p: InitPlan, seed: int) -> list[str]:
    """Re-initialise ``model`` in place by plan ``p`` from ``seed``; returns the parameters left as they were."""
    params = [n for n, _ in model.named_parameters()]
    manual_seed = _seeder(model)
    with _rng(model), torch.no_grad():
        manual_seed(seed)
        if p.method == "builder":
            covered = set()
            if p.defaulted:  # the tensors the builder does not make: their layers' defaults, from a stream of their own
                manual_seed(_derived(seed))
                covered = _reset(model, {k.rpartition(".")[0] for k in p.defaulted})
            manual_seed(seed)  # after the defaults: a layer's reset also resets the tensors the builder makes
            covered |= _draw_builder(p.builder, model.state_dict(keep_vars=True), seed)
            return [n for n in params if n not in covered]
        covered = _reset(model)
        if p.method == "module":
            before = {n: t.detach().clone() for n, t in model.named_parameters() if n not in covered}
            for name, method, how in p.calls:
                mod = model.get_submodule(name) if name else model
                fn = getattr(mod, method)
                try:
                    mod.apply(fn) if how == "apply" else fn()
                except Exception as e:
                    raise EdgewiseError(f"init='module': {type(mod).__name__}.{method}() of "
                                        f"{name or 'the model'!r} raised {type(e).__name__}: {e}; pass "
                                        "init='default'") from None
            after = dict(model.named_parameters())
            covered |= {n for n, t in before.items() if not torch.equal(t, after[n].detach())}
        if p.method == "std":
            gen = torch.Generator().manual_seed(seed)
            for n, t in model.named_parameters():
                if t.ndim >= 2:
                    t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float64) * p.std)
                    covered.add(n)
                elif _has_weight(model, n):
                    t.zero_()
                    covered.add(n)
    return [n for n in params if n not in covered]


def reinit_(model: nn.Module, seed: int, init: str = "auto", std: float | None = None) -> str:
    """Re-initialise ``model`` in place from ``seed`` by ``init`` (see :func:`plan`); returns the method used."""
    p = plan(model, init, std)
    apply(model, p, seed)
    return p.method

