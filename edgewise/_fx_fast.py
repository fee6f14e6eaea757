"""torch.fx's symbolic tracer with less overhead and the same graphs.

:class:`FastTracer` makes exactly the nodes, names, scopes, ``nn_module_stack`` metadata and tensor-constant
names torch.fx's own ``Tracer`` makes (tested against it on zoo models), without work a symbolic trace of an
``nn.Module`` does not need: the scan of every argument for symbolic integers, ``copy.copy`` of the scope at
every module call, the parameter search set up for attributes that are not tensors, the walk of every module's
``__dict__`` for tensor constants before the trace starts (done only when an argument is a tensor that is not a
parameter), a new wrapper for every leaf function (``math``'s, those registered with ``torch.fx.wrap``) at every
trace, a check of a module's globals at every call (once per class here, per object with its own forward),
regular expressions for node names that string methods name the same, the disassembly of a function at every
unpacking of a proxy (kept per code object), and setting ``nn.Module.__call__`` and
``__getattr__`` (which updates every subclass: calls are routed through ``_call_impl`` and ``__getattr__`` is
set on the model's own classes instead, where none of them defines its own). Nothing is remembered per
architecture. Where the private torch.fx parts it relies on are missing (another torch version), each method is
torch.fx's own.
"""

from __future__ import annotations

import builtins
import dis
import functools
import inspect
from types import CodeType, FunctionType

import torch
import torch.fx
import torch.fx._symbolic_trace as _st
import torch.nn as nn

from ._fingerprint import _named_modules

__all__ = ["FastTracer"]

#: the private torch.fx.Graph parts ``create_node`` uses
LEAN_NODES = all(hasattr(torch.fx.Graph(), a)
                 for a in ("_target_to_str", "_insert", "_graph_namespace", "_find_nodes_lookup_table", "_len")) and \
    all(hasattr(torch.fx.graph, a) for a in ("_name_regex", "_illegal_char_regex", "_illegal_names")) and \
    all(hasattr(torch.fx.Graph()._graph_namespace, a) for a in ("_used_names", "_base_count"))
#: the private torch.fx parts ``trace`` uses
LEAN_TRACE = all(hasattr(_st, a) for a in (
    "_orig_module_call", "_orig_module_getattr", "_new_patcher", "_wrapped_fns_to_patch", "_wrapped_methods_to_patch",
    "_create_wrapped_func", "_create_wrapped_method", "_get_is_fx_tracing", "_set_is_fx_tracing",
    "_constant_attribute_types"))
_immutable_dict = torch.fx.immutable_collections.immutable_dict


def _target_name(graph: torch.fx.Graph, target) -> str:
    """``graph._target_to_str(target)``: a function's name or a string target as it is where it has no capital
    letter (torch.fx's snake-casing regex would leave it unchanged), else torch.fx's own."""
    op = target if type(target) is str else getattr(target, "__name__", None) if callable(target) else None
    if type(op) is str and op.lower() == op and not (type(target) is str and op.startswith("__") and op.endswith("__")):
        return op
    return graph._target_to_str(target)


def _parse_name(candidate: str) -> tuple:
    """(name, base, number or None) of a node-name candidate as torch.fx's namespace makes it a Python identifier
    and splits off a trailing ``_<digits>``. By string methods where the candidate is an ASCII identifier or a
    dotted path of them (nearly every name: what torch.fx's regexes give, which take a microsecond or more on a
    long layer name), else by torch.fx's steps."""
    name = candidate
    if name.isascii() and not name.isidentifier() and ".." not in name:
        name = name.replace(".", "_")  # (what replacing each run of illegal characters by "_" gives here)
    if name.isascii() and name.isidentifier():
        base, _, num = name.rpartition("_")
        if base and num.isdigit():
            return name, base, int(num)
        return name, name, None
    fxg = torch.fx.graph
    name, match = candidate, fxg._name_regex.match(candidate)
    if match is None:
        name = fxg._illegal_char_regex.sub("_", name) or "_unnamed"
        if name[0].isdigit():
            name = f"_{name}"
        match = fxg._name_regex.match(name)
        if match is None:
            raise AssertionError(f"Name regex failed to match candidate: {name}")
    base, num = match.group(1, 2)
    return name, base, None if num is None else int(num)


def _create_name(space, candidate: str) -> str:
    """torch.fx's ``_Namespace.create_name(candidate, None)``, the candidate parsed by :func:`_parse_name`."""
    name, base, num = _parse_name(candidate)
    used = space._used_names
    if num is None or name in used:
        num = space._base_count.get(base, 0)
        if torch.fx.graph._illegal_names.get(name, None) is not None:
            num += 1
            name = f"{base}_{num}"
    while name in used:
        num += 1
        name = f"{base}_{num}"
    used.add(name)
    space._base_count[base] = num
    return name


@functools.lru_cache(maxsize=None)
def _wrapped(fn):
    """torch.fx's wrapper of a leaf function (it records a call given a proxy, else calls ``fn``): the same
    wrapper every trace rather than a new one for each of the ~100 functions each trace patches."""
    return _st._create_wrapped_func(fn)


@functools.lru_cache(maxsize=None)
def _wrapped_method(cls: type, name: str):
    return _st._create_wrapped_method(cls, name)


def _patch_wrapped(patcher) -> None:
    """torch.fx's ``_patch_wrapped_functions``: the functions and methods registered with ``torch.fx.wrap``."""
    for (_, name), frame_dict in _st._wrapped_fns_to_patch.copy().items():
        orig = getattr(builtins, name) if name not in frame_dict and hasattr(builtins, name) else frame_dict[name]
        patcher.patch(frame_dict, name, _wrapped(orig))
    for cls, name in _st._wrapped_methods_to_patch:
        patcher.patch_method(cls, name, _wrapped_method(cls, name))


def _autowrap(patcher, frame_dict: dict, function_ids: set) -> None:
    """torch.fx's ``_autowrap_check``: the leaf functions (``math``'s, timm's) found in a module's globals, patched
    as one dict update and reverted as one (``math`` alone has about sixty: one torch.fx patch object each)."""
    if patcher.visit_once(frame_dict):
        new = {name: _wrapped(value) for name, value in frame_dict.items()
               if not name.startswith("_") and callable(value) and id(value) in function_ids
               and not getattr(value, "__fx_already_patched", False)}
        if new:
            for fn in new.values():
                fn.__fx_already_patched = True  # (as torch.fx marks its patches: never wrapped twice)
            patcher.patches_made.append(_DictPatch(frame_dict, new))
            patcher.patches_made[-1].patch()


_GET_INSTRUCTIONS = dis.get_instructions


@functools.lru_cache(maxsize=256)
def _code_instructions(code: CodeType) -> tuple:
    return tuple(_GET_INSTRUCTIONS(code))


def _instructions(x, **kwargs):
    """``dis.get_instructions`` while a trace runs, kept per code object: torch.fx's ``Proxy.__iter__`` disassembles
    the calling function at every unpacking of a proxy (``B, C, H, W = x.shape``: MaxViT-T 88 times)."""
    if kwargs or type(x) is not CodeType:
        return _GET_INSTRUCTIONS(x, **kwargs)
    return iter(_code_instructions(x))


class _DictPatch:
    """Names of a dict set to new values for a trace and back after: a torch.fx patch."""

    def __init__(self, frame_dict: dict, new: dict):
        self.frame_dict, self.new, self.old = frame_dict, new, {k: frame_dict[k] for k in new}

    def patch(self) -> None:
        self.frame_dict.update(self.new)

    def revert(self) -> None:
        self.frame_dict.update(self.old)


class _TensorAttrs(dict):
    """torch.fx's map from tensor attributes of the modules (not parameters or buffers) to their names,
    collected on first use: a trace whose arguments are all proxies and plain values never looks."""

    def __init__(self, root: nn.Module):
        super().__init__()
        self._root = root

    def _collect(self) -> None:
        root, self._root = self._root, None
        stack = [(root, "")]
        while stack:  # depth first, each module before its children, as torch.fx walks (a later name wins)
            m, prefix = stack.pop()
            for k, v in m.__dict__.items():
                if isinstance(v, _st._constant_attribute_types):
                    dict.__setitem__(self, v, prefix + k)
            stack.extend((child, f"{prefix}{k}.") for k, child in reversed(list(m.named_children())))

    def get(self, key, default=None):
        if self._root is not None:
            self._collect()
        return super().get(key, default)

    def __getitem__(self, key):
        if self._root is not None:
            self._collect()
        return super().__getitem__(key)

    def __contains__(self, key):
        if self._root is not None:
            self._collect()
        return super().__contains__(key)


class FastTracer(torch.fx.Tracer):
    """torch.fx's ``Tracer``, the same graphs with less overhead (see the module docstring)."""

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        """torch.fx's ``create_node`` without its scan of every argument for symbolic integers, which a symbolic
        trace never makes, and with the module stack copied as a dict rather than through ``copy.copy`` (in a
        :meth:`trace` that keeps no stack traces or preserved metadata; torch.fx's own otherwise)."""
        graph = self.graph
        if not self.__dict__.get("_lean_nodes"):
            return super().create_node(kind, target, args, kwargs, name, type_expr)
        if not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise AssertionError(f"args and kwargs must be a tuple and a dict, got {type(args)}, {type(kwargs)}")
        space = graph._graph_namespace
        name = _create_name(space, name if name is not None else _target_name(graph, target))
        node = torch.fx.Node(graph, name, kind, target, args, kwargs or _immutable_dict(), type_expr)
        space.associate_name_with_obj(name, node)
        graph._insert(node)
        graph._find_nodes_lookup_table.insert(node)
        graph._len += 1
        self.node_name_to_scope[name] = (self.scope.module_path, self.scope.module_type)
        if self.module_stack:
            node.meta["nn_module_stack"] = self.module_stack.copy()
        return node

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        """torch.fx's ``create_proxy`` (in a lean :meth:`trace`) without lowering empty keyword arguments."""
        if not self.__dict__.get("_lean_nodes"):
            return super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        args_ = self.create_arg(args)
        kwargs_ = self.create_arg(kwargs) if kwargs else {}
        if not isinstance(args_, tuple) or not isinstance(kwargs_, dict):
            raise AssertionError(f"args and kwargs must lower to a tuple and a dict, got {type(args_)}, {type(kwargs_)}")
        node = self.create_node(kind, target, args_, kwargs_, name, type_expr)
        return self.proxy(node) if proxy_factory_fn is None else proxy_factory_fn(node)

    def call_module(self, m, forward, args, kwargs):
        """torch.fx's ``call_module`` (scope, module stack and call counts kept as it keeps them) without
        copying the scope object on every call."""
        paths = self.submodule_paths
        path = paths.get(m) if paths and type(self).path_of_module is _PATH_OF_MODULE else None
        if path is None:
            path = self.path_of_module(m)
        scope = self.scope
        saved = scope.module_path, scope.module_type
        scope.module_path, scope.module_type = path, type(m)
        try:
            calls = self.num_calls.get(path, 0)
            key = f"{path}@{calls}" if calls > 0 else path
            self.module_stack[key] = (path, type(m))
            self.num_calls[path] = calls + 1
            if not self.is_leaf_module(m, path):
                out = forward(*args, **kwargs)
            else:
                out = self.create_proxy("call_module", path, args, kwargs)
            popped, _ = self.module_stack.popitem(last=True)
            if popped != key:
                raise AssertionError(f"Unexpected key {popped}, expected {key}")
        finally:
            scope.module_path, scope.module_type = saved
        return out

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        """torch.fx's ``getattr``, which hands back anything but a tensor as it is, without its search set-up
        for the submodules, numbers and flags a forward reads (nearly every attribute it reads); a parameter or
        buffer gets its name from :meth:`tensor_name`, where torch.fx walks every parameter of the model for each
        one a forward reads (Swin's attention passes its weights to a function: 6 % of its first trace)."""
        if not isinstance(attr_val, torch.Tensor):
            return attr_val
        name = self.tensor_name(attr_val, "parameters") if isinstance(attr_val, nn.Parameter) else None
        if name is None and self.proxy_buffer_attributes:
            name = self.tensor_name(attr_val, "buffers")
        if name is None:
            return super().getattr(attr, attr_val, parameter_proxy_cache)
        proxy = parameter_proxy_cache.get(name)
        if proxy is None:  # (as torch.fx makes it)
            factory = (lambda node: _st.ParameterProxy(self, node, name, attr_val)) if self.param_shapes_constant \
                else None
            proxy = parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {},
                                                                    proxy_factory_fn=factory)
        return proxy

    def tensor_name(self, a: torch.Tensor, kind: str) -> str | None:
        """The name torch.fx finds for ``a`` by walking the root's ``named_parameters()`` or ``named_buffers()``
        (``kind``), the first it is registered under, from a table made on first use in this trace; None where
        the table has none or its name does not hold ``a`` now (a forward may replace one: torch.fx's walk then
        decides)."""
        tables = self.__dict__.setdefault("_tensor_names", {})
        table = tables.get(kind)
        if table is None:
            table = tables[kind] = {}
            for name, t in getattr(self.root, "named_" + kind)():
                table.setdefault(id(t), name)
        name = table.get(id(a))
        if name is None:
            return None
        *path, last = name.split(".")
        owner = self.root
        for part in path:  # (through the module tables: a trace patches nn.Module's __getattr__)
            owner = owner._modules.get(part)
            if owner is None:
                return None
        return name if (owner._parameters if kind == "parameters" else owner._buffers).get(last) is a else None

    def trace(self, root, concrete_args=None, paths: dict | None = None):
        """torch.fx's ``trace`` of an ``nn.Module``'s ``forward``, with the tensor-constant map collected on
        first use and each module class's globals checked for functions to wrap once, not at every call;
        ``paths``: each module of ``root`` to its name, as ``named_modules`` gives them, if the caller has it."""
        if not LEAN_TRACE or not isinstance(root, nn.Module) or self.traced_func_name != "forward" or \
                not isinstance(getattr(type(root), "forward", None), FunctionType):
            return super().trace(root, concrete_args)
        was_tracing = _st._get_is_fx_tracing()
        _st._set_is_fx_tracing(True)
        try:
            from torch.fx._lazy_graph_module import _LazyGraphModule

            _LazyGraphModule.force_recompile(root)
            self.root = root
            fn = type(root).forward
            self.root_module_name = root._get_name()
            self.submodule_paths = paths or {mod: name for name, mod in _named_modules(root)}
            self.graph = torch.fx.Graph(tracer_cls=type(self))
            self._lean_nodes = LEAN_NODES and not (self.check_mutable_operations or self.record_stack_traces or
                                                   torch.fx.traceback.has_preserved_node_meta())
            code = fn.__code__
            self.graph._co_fields = {"co_name": code.co_name, "co_filename": code.co_filename,
                                     "co_firstlineno": code.co_firstlineno}
            self.tensor_attrs = _TensorAttrs(root)
            fn_globals = fn.__globals__
            fn, args = self.create_args_for_root(fn, True, concrete_args)
            with _st._new_patcher() as patcher:
                patcher.patches_made.append(_DictPatch(dis.__dict__, {"get_instructions": _instructions}))
                patcher.patches_made[-1].patch()
                self._patch_modules(patcher)
                _patch_wrapped(patcher)
                _autowrap(patcher, fn_globals, self._autowrap_function_ids)
                for module in self._autowrap_search:
                    _autowrap(patcher, module.__dict__, self._autowrap_function_ids)
                ann = inspect.get_annotations(inspect.unwrap(fn))
                self.create_node("output", "output", (self.create_arg(fn(*args)),), {},
                                 type_expr=ann.get("return", None))
            self.submodule_paths = None
        except RuntimeError as e:
            if e.args and isinstance(e.args[0], str) and "data-dependent" in e.args[0]:
                e.partial_fx_graph = self.graph.python_code(root_module="self", verbose=True).src
            raise
        finally:
            _st._set_is_fx_tracing(was_tracing)
            self._lean_nodes = False
        return self.graph

    def _patch_modules(self, patcher) -> None:
        """Route module calls and attribute reads through this tracer for the trace, as torch.fx does.

        torch.fx sets ``nn.Module.__call__`` and ``__getattr__`` for the trace and back: setting a special method
        on ``nn.Module`` makes Python update the slots of all its subclasses (about 600 with torchvision loaded:
        0.3–0.5 ms each time, four times a trace). Here, where the model allows it, calls are routed through
        ``nn.Module._call_impl`` (what ``__call__`` calls: an ordinary attribute, set in microseconds) and
        ``__getattr__`` is set on the model's own module classes only; the tracer sees the same calls and reads.
        """
        get = _st._orig_module_getattr
        cache: dict = {}  # parameter proxies by name
        checked: set = set()  # module classes whose forward's globals are checked
        lean = LEAN_MODULES and _lean_classes(self.submodule_paths)
        call = _CALL_IMPL if lean else _st._orig_module_call

        @functools.wraps(get)
        def module_getattr(mod, attr):
            value = get(mod, attr)  # (a submodule, nearly always: every tracer's getattr hands those back as they are)
            return value if isinstance(value, nn.Module) else self.getattr(attr, value, cache)

        @functools.wraps(call)
        def module_call(mod, *args, **kwargs):
            def forward(*args, **kwargs):
                return call(mod, *args, **kwargs)

            cls = type(mod)
            if cls not in checked or "forward" in mod.__dict__:
                if "forward" not in mod.__dict__:
                    checked.add(cls)
                _autowrap(patcher, getattr(getattr(mod, "forward", mod), "__globals__", {}), self._autowrap_function_ids)
            return self.call_module(mod, forward, args, kwargs)

        if not lean:
            patcher.patch_method(nn.Module, "__getattr__", module_getattr, deduplicate=False)
            patcher.patch_method(nn.Module, "__call__", module_call, deduplicate=False)
            return
        for cls in lean:
            patcher.patches_made.append(_ClassAttr(cls, "__getattr__", module_getattr))
            patcher.patches_made[-1].patch()
        patcher.patch_method(nn.Module, "_call_impl", module_call, deduplicate=False)


_CALL_IMPL = nn.Module._call_impl
_PATH_OF_MODULE = torch.fx.Tracer.path_of_module
#: the private torch parts the lean module routing relies on: ``__call__`` calls ``self._call_impl``
LEAN_MODULES = LEAN_TRACE and "_call_impl" in nn.Module._wrapped_call_impl.__code__.co_names


@functools.lru_cache(maxsize=None)
def _plain(cls: type) -> bool:
    """Whether ``cls`` takes ``__getattr__`` and ``_call_impl`` from ``nn.Module``."""
    return cls.__getattr__ is _st._orig_module_getattr and cls._call_impl is _CALL_IMPL


def _module_classes(modules) -> set[type] | None:
    """The classes of ``modules``, or None where a class has its own ``__getattr__`` or ``_call_impl`` or a module
    is compiled (``torch.compile``'s call bypasses ``_call_impl``)."""
    classes = set()
    for m in modules:
        cls = type(m)
        if cls not in classes:
            if not _plain(cls):
                return None
            classes.add(cls)
        if m.__dict__.get("_compiled_call_impl") is not None or "_call_impl" in m.__dict__:
            return None
    return classes


def _lean_classes(modules) -> list[type] | None:
    """The module classes of ``modules`` without an ancestor among them (setting ``__getattr__`` on these routes
    every module's), or None where :func:`_module_classes` is: torch.fx's patching then."""
    classes = _module_classes(modules)
    return None if classes is None else [c for c in classes if not any(b in classes for b in c.__mro__[1:])]


class _ClassAttr:
    """``cls.name = new`` for the trace, the class's own value (or none) back after: a torch.fx patch."""

    def __init__(self, cls: type, name: str, new):
        self.cls, self.name, self.new = cls, name, new
        self.own = cls.__dict__.get(name, _ClassAttr)

    def patch(self) -> None:
        setattr(self.cls, self.name, self.new)

    def revert(self) -> None:
        if self.own is _ClassAttr:
            delattr(self.cls, self.name)
        else:
            setattr(self.cls, self.name, self.own)
