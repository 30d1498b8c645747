"""YAML read safely and strictly: plain data only, and nothing accepted silently.

``yaml.safe_load`` builds only plain types, but it lets the last of two equal keys win (a
limit written twice is half ignored) and expands aliases without bound (a few lines can
stand for billions of values). Every YAML file sched reads, specs and config tables alike,
goes through ``load``, which refuses both with the line where they are.
"""

from __future__ import annotations

from typing import Any

import yaml

_MERGE = "tag:yaml.org,2002:merge"
_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~7x faster


def load(text: str, *, max_values: int, exact_marks: bool = False) -> Any:
    """The document's data; yaml.YAMLError (with a mark) for a duplicate key, an alias that
    contains itself, or more than ``max_values`` values once aliases are expanded.

    ``exact_marks`` parses in Python, whose syntax errors point at the line at fault where
    libyaml's can point past it (a cut-off key is reported on the line after): for small
    files a person fixes by hand, such as job specs."""
    loader = (yaml.SafeLoader if exact_marks else _FAST)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, max_values)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, max_values: int) -> None:
    """Iterative, with each shared (aliased) node sized once, so neither depth nor a
    billion-laughs document costs more than one pass over the nodes as written."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[id(node)] > max_values:
                raise _problem(node, f"more than {max_values} values once aliases are expanded")
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            raise _problem(node, "an alias refers to the mapping or list that contains it")
        if isinstance(node, yaml.MappingNode):
            _no_duplicate_keys(node)
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _no_duplicate_keys(node: yaml.MappingNode) -> None:
    """Keys written twice in this mapping; keys brought in by a ``<<`` merge may be
    overridden, that is what merging is for."""
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if key.tag == _MERGE or not isinstance(key, yaml.ScalarNode):
            continue
        if (key.tag, key.value) in seen:
            shown = key.value if len(key.value) <= 40 else key.value[:37] + "..."
            raise _problem(key, f"key {shown!r} is given twice")
        seen.add((key.tag, key.value))


def _problem(node: yaml.Node, problem: str) -> yaml.YAMLError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
