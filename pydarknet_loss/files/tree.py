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
    holds them; ``group_size``/``group_offset`` have ``groups`` entries.

    Everything but ``parent`` follows from the parents (read_tree's
    bookkeeping), so the constructor checks the given arrays against what
    the parents give and refuses any difference, naming the array and the
    entry; :meth:`from_parents` and :func:`read_tree` are the usual ways to
    build one.  The stored arrays are read-only copies.
    """

    parent: np.ndarray
    child: np.ndarray
    group: np.ndarray
    leaf: np.ndarray
    group_size: np.ndarray
    group_offset: np.ndarray
    names: Optional[Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        given = {k: getattr(self, k) for k in _native.TREE_ARRAYS}
        parent = _parents(given["parent"], "Tree parent")
        expected = _native.tree_arrays(parent)
        if expected is None:  # pragma: no cover - _parents applies the C core's rule
            raise ValueError("the C core refused the tree's parents")
        for name in _native.TREE_ARRAYS[1:]:
            a = _validate.int_array(f"Tree {name}", given[name], allow_empty=True)
            e = expected[name]
            if a.shape != e.shape:
                raise ValueError(f"Tree {name} has {a.size} entries; the {len(parent)} parents give {e.size} "
                                 f"(read_tree's structure): build the tree with Tree.from_parents(parents)")
            bad = np.flatnonzero(a != e)
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"Tree {name}[{i}] = {int(a[i])}, but the parents give {int(e[i])} (read_tree's "
                                 "structure): build the tree with Tree.from_parents(parents)")
        for name in _native.TREE_ARRAYS:
            object.__setattr__(self, name, _validate.frozen(expected[name]))
        if self.names is not None:
            names = self.names
            if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
                raise TypeError(f"Tree names must be a sequence of str (one per node), got {type(names).__name__}")
            if len(names) != len(parent):
                raise ValueError(f"Tree names has {len(names)} entries for {len(parent)} nodes")
            for i, nm in enumerate(names):
                if not isinstance(nm, str):
                    raise TypeError(f"Tree names[{i}] must be a str, got {type(nm).__name__}")
            object.__setattr__(self, "names", tuple(names))

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
        p = _parents(parents, "tree parents")
        arrays = _native.tree_arrays(p)
        if arrays is None:  # pragma: no cover - the rule above is the C core's
            raise ValueError("the C core refused the tree's parents")
        return cls(names=None if names is None else names, **arrays)

    def _arrays(self) -> Dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in _native.TREE_ARRAYS}

    def __repr__(self) -> str:
        return f"Tree(n={self.n}, groups={self.groups})"


def _parents(parents: Any, name: str) -> np.ndarray:
    p = _validate.int_array(name, parents)
    bad = np.flatnonzero((p < -1) | (p >= np.arange(len(p))))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: node {i} has parent {int(p[i])}: expected -1 or an earlier node "
                         f"(0..{i - 1})" if i else f"{name}: node 0 has parent {int(p[0])}: expected -1 (a root)")
    return p


def regular_file(p: str, what: str) -> None:
    """Refuses a path that is not a regular file, saying what it is (a FIFO
    would block the reader, a device would stream forever); the exception
    types are those of pydarknet_loss._validate.regular_file."""
    _validate.regular_file(p, what)


def read_tree(path: PathLike) -> Tree:
    """darknet's read_tree: one ``name parent`` line per node.

    Stricter than upstream where upstream would misbehave: a line without a
    name and an integer parent (upstream takes parent -1 for it), a name over
    255 bytes (upstream overflows a buffer), a NUL byte, or a parent that is
    not an earlier line (upstream writes out of bounds) is a ValueError
    naming the line.  Text after the parent on a line is ignored, as
    sscanf("%s %d") does.  A path that is not a regular file is refused.
    """
    p = os.fspath(path)
    if not isinstance(p, str):
        p = os.fsdecode(p)
    regular_file(p, "tree file")
    parents, names, bad = _native.read_tree_file(p)
    if parents is None:
        if bad == 0:
            raise ValueError(f"{p}: cannot read a tree from this file (empty or unreadable)")
        raise ValueError(f"{p}, line {bad}: expected 'name parent' with a name of at most 255 bytes, no NUL byte, "
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
