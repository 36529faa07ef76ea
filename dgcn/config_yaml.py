"""The YAML reader of config files: PyYAML's safe loader, stricter in two ways.

* A key written twice in one mapping is an error naming the key and both lines (PyYAML keeps
  the last one silently, so a typo'd copy of ``lr:`` would decide the run).
* A document whose aliases expand to more than :data:`MAX_NODES` values is refused before it
  is built: a few hundred bytes of nested ``&anchor``/``*alias`` lists (a "billion laughs")
  would otherwise become millions of values, and an error message that printed one of them
  would run to megabytes. A config has a few hundred values at most.

Only :func:`parse_yaml` is used by :mod:`dgcn.config`; messages never echo the document.
"""

from __future__ import annotations

import yaml

from dgcn.errors import ConfigError

#: the most values (scalars, lists, mappings) a config document may expand to
MAX_NODES = 10_000


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base' merges, on purpose
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                    seen[key] = line
                except TypeError:  # an unhashable key: PyYAML's own error says it
                    break
                if first is not None:
                    raise ConfigError(
                        f"key {short(key)} is written twice in config {self.name}, on lines "
                        f"{first} and {line}: keep one of them"
                    )
        return super().construct_mapping(node, deep=deep)


def cut(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (ending in ``...`` when cut), for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: how an error message shows a value."""
    return cut(repr(value), limit)


def _expanded_size(node: yaml.Node, limit: int) -> int:
    """The number of values ``node`` stands for once every alias is expanded, counted up to
    just past ``limit`` (a node met through several aliases counts each time)."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = limit + 1  # a node that contains itself: a cycle is over any limit
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [child for pair in n.value for child in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[id(n)] = min(total, limit + 1)
        return sizes[id(n)]

    return size(node)


def parse_yaml(text: str, where: str) -> object:
    """The object of one YAML document (None when it is empty), read with the safe loader.

    Args:
        text: the document.
        where: the file's name, for the messages.

    Raises:
        ConfigError: invalid YAML, a key written twice in one mapping (naming it and its two
            lines), or more than :data:`MAX_NODES` values once aliases are expanded.
    """
    loader = _StrictLoader(text)
    loader.name = where
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, MAX_NODES) > MAX_NODES:
            raise ConfigError(
                f"config {where} expands to more than {MAX_NODES} values through its YAML "
                "aliases (*name); a config needs a few hundred: write the values out"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        text = " ".join(str(err).split())
        raise ConfigError(f"config {where} is not valid YAML: {cut(text, 300)}") from err
    finally:
        loader.dispose()
