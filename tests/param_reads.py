"""The params a stage reads, found by reading its code, not by running it: a param read only
on a branch some run skips is still found.

The convention the code keeps: a params object's type is stated (a parameter annotated with
a params.py dataclass, or a name bound to `load_params()` or to a section of a typed object),
and a param is read as an attribute of it (`params.train.lr`, `train.lr`). Over the functions
the stage script can reach by name, every such attribute is a read; `dataclasses.asdict(x)`
and `getattr(x, ...)` read the whole section x. Validation (`load_params`) reads every key and
decides no output, so it is not followed.
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

from metricad import params as params_module

VALIDATION = {"load_params", "params_from_dict"}
WHOLE_SECTION_CALLS = {"asdict", "astuple", "vars", "getattr"}
Function = ast.FunctionDef | ast.AsyncFunctionDef


def _sections() -> dict[type, str]:
    """Every params dataclass with its dotted prefix: Params -> "", TrainParams -> "train."."""
    prefixes: dict[type, str] = {}

    def visit(cls: type, prefix: str) -> None:
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
    return hints[name] if dataclasses.is_dataclass(hints[name]) else PREFIXES[cls] + name


def _keys(cls: type) -> set[str]:
    keys: set[str] = set()
    for name in typing.get_type_hints(cls):
        found = _field(cls, name)
        keys |= _keys(found) if isinstance(found, type) else {found}
    return keys


def _annotated(annotation: ast.expr | None) -> type | None:
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    for node in ast.walk(annotation) if annotation is not None else ():
        if isinstance(node, ast.Name) and node.id in CLASSES:
            return CLASSES[node.id]
    return None


def _called_name(call: ast.Call) -> str:
    return getattr(call.func, "id", None) or getattr(call.func, "attr", "")


def reads_in(body: ast.AST) -> set[str]:
    """The params one function (or a module's top level) reads."""
    types: dict[str, type] = {}
    if isinstance(body, Function):
        arguments = body.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            if (cls := _annotated(arg.annotation)) is not None:
                types[arg.arg] = cls

    def type_of(expr: ast.expr) -> type | None:
        if isinstance(expr, ast.Name):
            return types.get(expr.id)
        if isinstance(expr, ast.Attribute) and (owner := type_of(expr.value)) is not None:
            found = _field(owner, expr.attr)
            return found if isinstance(found, type) else None
        if isinstance(expr, ast.Call) and _called_name(expr) in VALIDATION:
            return params_module.Params
        return None

    nodes = list(ast.walk(body))
    bindings = []
    for node in nodes:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                bindings.append((target, node.value))
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    bindings += zip(target.elts, node.value.elts, strict=False)
    changed = True
    while changed:  # a name bound to a section of a name bound before, in any order
        changed = False
        for target, value in bindings:
            cls = type_of(value)
            if isinstance(target, ast.Name) and cls is not None and types.get(target.id) != cls:
                types[target.id], changed = cls, True
    reads: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Attribute) and (owner := type_of(node.value)) is not None:
            found = _field(owner, node.attr)
            if isinstance(found, str):
                reads.add(found)
        elif (
            isinstance(node, ast.Call)
            and _called_name(node) in WHOLE_SECTION_CALLS
            and node.args
            and (cls := type_of(node.args[0])) is not None
        ):
            reads |= _keys(cls)
    return reads


def param_reads(script: Path, library: set[Path]) -> set[str]:
    """The params `script` reads, over the library files it imports (`library`): its own code,
    each module's top level and registered (decorated) functions, and every function or
    method reachable from those by name; a class's name reaches its __init__, __call__ and
    forward."""
    by_name: dict[str, list[ast.AST]] = {}
    todo: list[ast.AST] = []
    for file in [script, *library]:
        tree = ast.parse(file.read_text(), str(file))
        top = [s for s in tree.body if not isinstance(s, Function | ast.ClassDef)]
        todo.append(ast.Module(body=top, type_ignores=[]))
        for node in tree.body:
            methods = node.body if isinstance(node, ast.ClassDef) else []
            for function in [node, *methods]:
                if not isinstance(function, Function):
                    continue
                by_name.setdefault(function.name, []).append(function)
                if function in methods and function.name in {"__init__", "__call__", "forward"}:
                    by_name.setdefault(node.name, []).append(function)
                if file == script or (function is node and node.decorator_list):
                    todo.append(function)
    reads: set[str] = set()
    done: set[int] = set()
    while todo:
        body = todo.pop()
        if id(body) in done:
            continue
        done.add(id(body))
        reads |= reads_in(body)
        if getattr(body, "name", None) in VALIDATION:
            continue
        for node in ast.walk(body):
            name = getattr(node, "id", None) or getattr(node, "attr", None)
            todo += by_name.get(name, []) if isinstance(node, ast.Name | ast.Attribute) else []
    return reads
