"""Darknet softmax trees (the YOLO9000 hierarchy), as upstream's read_tree
builds them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _native, _validate

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True, eq=False)
class Tree:
    """A darknet tree: one node per class, grouped into sibling groups over
    which the softmax runs.  Arrays are int32, as upstream's ``tree`` struct
    holds them; ``group_size``/``group_offset`` have ``groups`` entries."""

    parent: np.ndarray
    child: np.ndarray
    group: np.ndarray
    leaf: np.ndarray
    group_size: np.ndarray
    group_offset: np.ndarray
    names: Optional[Tuple[str, ...]] = None

    @property
    def n(self) -> int:
        return len(self.parent)

    @property
    def groups(self) -> int:
        return len(self.group_size)

    @classmethod
    def from_parents(cls, parents: Sequence[int], names: Optional[Sequence[str]] = None) -> "Tree":
        """Build the tree read_tree would build from a file with these parents
        (line i's parent, -1 for a root).  Parents must come before their
        children, as in every darknet tree file."""
        p = _validate.int_array("tree parents", parents)
        bad = np.flatnonzero((p < -1) | (p >= np.arange(len(p))))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"tree node {i} has parent {int(p[i])}: expected -1 or an earlier node "
                             f"(0..{i - 1})")
        arrays = _native.tree_arrays(p)
        if arrays is None:  # pragma: no cover - the rule above is the C core's
            raise ValueError("the C core refused the tree's parents")
        for a in arrays.values():
            a.setflags(write=False)
        return cls(names=None if names is None else tuple(names), **arrays)

    def _arrays(self) -> Dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in _native.TREE_ARRAYS}

    def __repr__(self) -> str:
        return f"Tree(n={self.n}, groups={self.groups})"


def read_tree(path: PathLike) -> Tree:
    """darknet's read_tree: one ``name parent`` line per node.

    Stricter than upstream where upstream would misbehave: a line without a
    name and an integer parent (upstream takes parent -1 for it), a name over
    255 bytes (upstream overflows a buffer) or a parent that is not an earlier
    line (upstream writes out of bounds) is a ValueError naming the line.
    Text after the parent on a line is ignored, as sscanf("%s %d") does.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"tree file not found: {p}")
    parents, names, bad = _native.read_tree_file(p)
    if parents is None:
        if bad == 0:
            raise ValueError(f"{p}: cannot read a tree from this file (empty or unreadable)")
        raise ValueError(f"{p}, line {bad}: expected 'name parent' with a name of at most 255 bytes "
                         f"and an integer parent in [-1, {bad - 1})")
    return Tree.from_parents(parents, names)


def as_tree(value: Any) -> Optional[Tree]:
    """The ``tree=`` argument of RegionLayer: None, a Tree, a path, or a
    parent array."""
    if value is None or isinstance(value, Tree):
        return value
    if isinstance(value, (str, os.PathLike)):
        return read_tree(value)
    return Tree.from_parents(value)
