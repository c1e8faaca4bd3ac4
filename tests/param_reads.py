"""The params a stage reads, found by reading its code, not by running it: a param read only
on a branch some run skips is still found.

The convention the code keeps: a params object's type is stated (a parameter or a variable
annotated with a params.py dataclass, a function whose return annotation names one, or
`load_params()`), and a param is read as an attribute of it (`params.train.lr`, `train.lr`).
Over the functions the stage script can reach by name, every such attribute is a read; a
section used whole (`dataclasses.asdict(x)`, `getattr(x, ...)`, formatted, compared, or handed
to code that does not state its type) reads every key in it. Validation (`load_params`) reads
every key and decides no output, so it is not followed.
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

from metricad import params as params_module
from metricad.validation import completed

VALIDATION = {"load_params", "params_from_dict"}
Function = ast.FunctionDef | ast.AsyncFunctionDef
Types = dict[str, type]


def _sections() -> dict[type, str]:
    """Every params dataclass with its dotted prefix: Params -> "", TrainParams -> "train.",
    a registry entry's settings (KnnSettings) -> "score.knn."; a section that hosts a
    registry as completed with its entries' subsections (validation.completed)."""
    prefixes: dict[type, str] = {}

    def visit(cls: type, prefix: str) -> None:
        cls = completed(cls)
        prefixes[cls] = prefix
        for name, kind in typing.get_type_hints(cls).items():
            if dataclasses.is_dataclass(kind):
                visit(kind, f"{prefix}{name}.")

    visit(params_module.Params, "")
    return prefixes


PREFIXES = _sections()
CLASSES = {cls.__name__: cls for cls in PREFIXES}


def _field(cls: type, name: str) -> type | str | None:
    """A section field's dataclass, or its dotted key if it is a value, or None."""
    hints = typing.get_type_hints(cls)
    if name not in hints:
        return None
    return completed(hints[name]) if dataclasses.is_dataclass(hints[name]) else PREFIXES[cls] + name


def _keys(cls: type) -> set[str]:
    keys: set[str] = set()
    for name in typing.get_type_hints(cls):
        found = _field(cls, name)
        keys |= _keys(found) if isinstance(found, type) else {found}
    return keys


def _entry_keys(cls: type) -> set[str]:
    """The keys of the registry entries' subsections a hosting section was completed with."""
    base = cls.__mro__[1]  # completed(X) subclasses X; a section hosting nothing: no entries
    own = {f.name for f in dataclasses.fields(base if dataclasses.is_dataclass(base) else cls)}
    keys: set[str] = set()
    for name in typing.get_type_hints(cls):
        found = _field(cls, name)
        if name not in own and isinstance(found, type):
            keys |= _keys(found)
    return keys


def _expression(annotation: ast.expr | None) -> ast.expr | None:
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return ast.parse(annotation.value, mode="eval").body
    return annotation


def _annotated(annotation: ast.expr | None) -> type | None:
    """The params class an annotation names (`TrainParams`, `TrainParams | None`), if any."""
    annotation = _expression(annotation)
    for node in ast.walk(annotation) if annotation is not None else ():
        if isinstance(node, ast.Name) and node.id in CLASSES:
            return CLASSES[node.id]
    return None


def _returned(function: Function) -> type | tuple[type | None, ...] | None:
    """What a function's return annotation says it returns: a params class, or a tuple with
    params classes in some places."""
    annotation = _expression(function.returns)
    if (
        isinstance(annotation, ast.Subscript)
        and getattr(annotation.value, "id", "") == "tuple"
        and isinstance(annotation.slice, ast.Tuple)
    ):
        places = tuple(_annotated(element) for element in annotation.slice.elts)
        return places if any(places) else None
    return _annotated(annotation)


def _called_name(call: ast.Call) -> str:
    return getattr(call.func, "id", None) or getattr(call.func, "attr", "")


def _arguments(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.arg]:
    arguments = function.args
    return [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]


class _Library:
    """The functions a stage can reach, by name, with what each one's signature says."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[Function]] = {}

    def add(self, name: str, function: Function) -> None:
        self.by_name.setdefault(name, []).append(function)

    def returns(self, name: str) -> type | tuple[type | None, ...] | None:
        found = {_returned(f) for f in self.by_name.get(name, [])} - {None}
        return found.pop() if len(found) == 1 else None

    def takes_typed(self, name: str, position: int | None, keyword: str | None) -> bool:
        """Whether every function called `name` states a params type for this argument (a
        function outside the stage's code states none)."""
        candidates = self.by_name.get(name, [])
        for function in candidates:
            arguments = _arguments(function)
            if arguments and arguments[0].arg in {"self", "cls"}:
                arguments = arguments[1:]
            if keyword is not None:
                chosen = [a for a in arguments if a.arg == keyword]
            else:
                chosen = arguments[position : position + 1] if position is not None else []
            if not chosen or _annotated(chosen[0].annotation) is None:
                return False
        return bool(candidates)


def reads_in(body: ast.AST, library: _Library, outer: Types | None = None) -> set[str]:
    """The params one function (or a module's top level) reads; `outer` types the names of
    its module's top level."""
    types: Types = dict(outer or {})
    nodes = list(ast.walk(body))
    for node in nodes:  # the function's own arguments and those of functions nested in it
        if isinstance(node, Function | ast.Lambda):
            for arg in _arguments(node):
                if (cls := _annotated(arg.annotation)) is not None:
                    types[arg.arg] = cls

    def type_of(expr: ast.expr) -> type | tuple[type | None, ...] | None:
        if isinstance(expr, ast.Name):
            return types.get(expr.id)
        if isinstance(expr, ast.Attribute) and isinstance(owner := type_of(expr.value), type):
            found = _field(owner, expr.attr)
            return found if isinstance(found, type) else None
        if isinstance(expr, ast.Call):
            name = _called_name(expr)
            return params_module.Params if name in VALIDATION else library.returns(name)
        if isinstance(expr, ast.Tuple | ast.List):
            places = tuple(type_of(element) for element in expr.elts)
            return places if any(places) else None
        return None

    bindings: list[tuple[ast.expr, ast.expr | None, ast.expr | None]] = []
    for node in nodes:
        if isinstance(node, ast.Assign):
            bindings += [(target, node.value, None) for target in node.targets]
        elif isinstance(node, ast.AnnAssign):
            bindings.append((node.target, node.value, node.annotation))
        elif isinstance(node, ast.NamedExpr):
            bindings.append((node.target, node.value, None))
        elif isinstance(node, ast.For | ast.comprehension) and isinstance(
            node.iter, ast.Tuple | ast.List
        ):
            # `for section in (params.tsne, params.gradcam)`: one name, several sections.
            for element in node.iter.elts:
                bindings.append((node.target, element, None))

    def bind(target: ast.expr, kind: object) -> bool:
        if isinstance(target, ast.Name) and isinstance(kind, type):
            if types.get(target.id) is not kind:
                types[target.id] = kind
                return True
        elif isinstance(target, ast.Tuple) and isinstance(kind, tuple):
            return any([bind(t, k) for t, k in zip(target.elts, kind, strict=False)])
        return False

    changed = True
    while changed:  # a name bound to a section of a name bound before, in any order
        changed = False
        for target, value, annotation in bindings:
            kind = _annotated(annotation) or (type_of(value) if value is not None else None)
            changed |= bind(target, kind)

    reads: set[str] = set()
    parents = {id(child): node for node in nodes for child in ast.iter_child_nodes(node)}
    for node in nodes:
        if not isinstance(node, ast.Name | ast.Attribute | ast.Call):
            continue
        kind = type_of(node)
        if isinstance(node, ast.Attribute) and isinstance(owner := type_of(node.value), type):
            found = _field(owner, node.attr)
            if isinstance(found, str):
                reads.add(found)
        if not isinstance(kind, type) or isinstance(node, ast.Call):
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.value is node:
            continue  # an attribute of it is read: counted above
        if isinstance(parent, ast.Assign | ast.AnnAssign | ast.NamedExpr | ast.Tuple):
            continue  # bound to a name (or a tuple of names) the reads go through
        if isinstance(parent, ast.keyword):
            keyword, call = parent.arg, parents.get(id(parent))
            if library.takes_typed(_called_name(call), None, keyword):
                continue
        elif isinstance(parent, ast.Call) and node in parent.args:
            if library.takes_typed(_called_name(parent), parent.args.index(node), None):
                continue
        elif isinstance(parent, ast.Return | ast.For | ast.comprehension):
            continue  # its caller's or its loop's reads are the reads
        if isinstance(parent, ast.Call) and _called_name(parent) == "settings_in":
            reads |= _entry_keys(kind)  # a registry hands an entry its own subsection only
            continue
        reads |= _keys(kind)  # used whole: formatted, compared, asdict, getattr, unknown code
    return reads


def _registered(function: Function) -> bool:
    """A registry entry (`@SOURCES.register("folder")`): run by name from params.yaml."""
    return any(
        isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "register"
        for d in function.decorator_list
    )


def param_reads(script: Path, library_files: set[Path]) -> set[str]:
    """The params `script` reads, over the library files it imports (`library_files`): its
    own code, each module's top level and registry entries, and every function or method
    reachable from those by name; a class's name reaches its __init__, __call__ and forward."""
    library = _Library()
    todo: list[tuple[ast.AST, Types]] = []
    modules: list[tuple[ast.Module, list[Function], bool]] = []
    for file in [script, *sorted(library_files)]:
        tree = ast.parse(file.read_text(), str(file))
        functions = []
        for node in tree.body:
            methods = node.body if isinstance(node, ast.ClassDef) else []
            for function in [node, *methods]:
                if isinstance(function, Function):
                    functions.append(function)
                    if function in methods and function.name in {"__init__", "__call__", "forward"}:
                        library.add(node.name, function)
                    if not function.name.startswith("__"):
                        # `super().__init__()` would reach every __init__ of the library
                        library.add(function.name, function)
        modules.append((tree, functions, file == script))
    owner_types: dict[int, Types] = {}
    for tree, functions, is_script in modules:
        top = ast.Module(
            body=[s for s in tree.body if not isinstance(s, Function | ast.ClassDef)],
            type_ignores=[],
        )
        module_types: Types = {}
        for node in top.body:  # PARAMS = load_params() at the top, read inside functions
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and _called_name(node.value) in VALIDATION
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        module_types[target.id] = params_module.Params
        todo.append((top, {}))
        for function in functions:
            owner_types[id(function)] = module_types
            if is_script or _registered(function):
                todo.append((function, module_types))
    reads: set[str] = set()
    done: set[int] = set()
    while todo:
        body, outer = todo.pop()
        if id(body) in done:
            continue
        done.add(id(body))
        reads |= reads_in(body, library, outer)
        if getattr(body, "name", None) in VALIDATION:
            continue
        for node in ast.walk(body):
            if isinstance(node, ast.Name | ast.Attribute):
                name = node.id if isinstance(node, ast.Name) else node.attr
                for function in library.by_name.get(name, []):
                    todo.append((function, owner_types.get(id(function), {})))
    return reads
