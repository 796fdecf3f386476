"""YAML loading that remembers where each value came from, so errors can name the line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from flowforge.errors import InvalidArgument
from flowforge.fieldpath import dotted

__all__ = ["Path", "SourceMap", "dotted", "load_yaml"]

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceMap:
    """The 1-based line of every mapping key and sequence item of one YAML document."""

    name: str
    lines: dict[Path, int]

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor the document has."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def where(self, path: Path) -> str:
        line = self.line_of(path)
        return f"{self.name}:{line}" if line else self.name


def load_yaml(text: str, name: str) -> tuple[Any, SourceMap]:
    """Parses one YAML document, once; syntax errors become InvalidArgument naming the line.
    A document of more than MAX_VALUES values is refused as soon as the parser gets there,
    not after reading it whole."""
    try:
        node, data = _parse(text, name)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in problem:  # libyaml's own limit, far past ours
            raise InvalidArgument(f"{where}: nested more than {MAX_DEPTH} levels deep") from None
        raise InvalidArgument(f"{where}: not valid YAML: {problem}") from None
    except _TooManyValues:
        raise InvalidArgument(
            f"{name}: more than {MAX_VALUES} values (the most a document may hold)"
        ) from None
    except RecursionError:
        raise InvalidArgument(f"{name}: nested more than {MAX_DEPTH} levels deep") from None
    lines: dict[Path, int] = {}
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)
    return data, SourceMap(name, lines)


def _parse(text: str, name: str) -> tuple[yaml.Node | None, Any]:
    loader = _CountingLoader(text)  # may check the characters, raising a YAMLError itself
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_shape(node, name)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


# Hostile documents: deep nesting, an alias inside the value it names (a cycle) and
# alias bombs (a few lines expanding to billions of values) are refused before use.
# The sample workflow (three jobs) holds 335 values (keys count too); 20 000 allow sixty times
# that and parse in about half a second, where a 1 MB document of 100 000 took seconds.
MAX_DEPTH = 64
MAX_VALUES = 20_000


class _TooManyValues(Exception):
    pass


if yaml.__with_libyaml__:
    # libyaml's reader, scanner and parser (PyYAML's C extension) make the events six times
    # faster than PyYAML's own; the composer stays PyYAML's, in Python, so that it counts.
    from yaml.cyaml import CParser

    class _Events(CParser):
        pass

else:  # pragma: no cover (PyYAML built without libyaml)

    class _Events(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)


class _CountingLoader(Composer, _Events, SafeConstructor, Resolver):
    """A safe loader counting the values it composes: it stops at MAX_VALUES + 1."""

    def __init__(self, text: str) -> None:
        _Events.__init__(self, text)  # type: ignore[call-arg]
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.values = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self.values += 1
        if self.values > MAX_VALUES:
            raise _TooManyValues
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


def _check_shape(root: yaml.Node, name: str) -> None:
    pending: list[tuple[yaml.Node, int, frozenset[int]]] = [(root, 1, frozenset())]
    seen = 0
    while pending:
        node, depth, ancestors = pending.pop()
        seen += 1
        where = f"{name}:{node.start_mark.line + 1}"
        if seen > MAX_VALUES:
            raise InvalidArgument(
                f"{name}: more than {MAX_VALUES} values once aliases are expanded"
            )
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if id(node) in ancestors:
            raise InvalidArgument(f"{where}: an alias refers to a value that contains it")
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            continue
        inside = ancestors | {id(node)}
        pending.extend((child, depth + 1, inside) for child in children)


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines)
