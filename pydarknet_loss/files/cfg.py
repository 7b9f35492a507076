"""Darknet .cfg files read by upstream's rules (parser.c read_cfg,
option_list.c, utils.c strip, atoi/atof).

* Every space, tab and newline is removed from a line, inside values too.
* A line starting (after that) with ``[`` opens a section; ``#`` and ``;``
  start comment lines; empty lines are skipped.  Text after a value is not a
  comment: ``size=3#x`` reads as 3 because atoi stops there.
* ``key=value`` splits at the first ``=``.  A line without ``=`` is kept as a
  key without a value (it never matches, and is reported unused); a line
  ending in ``=`` is a parse error upstream prints and skips (kept as an
  error here).
* A key looked up takes its *first* occurrence in the section; keys never
  looked up are reported as unused, as upstream warns.
* Numbers are read as C's atoi/atof read them: ``"3.7"`` is 3 as an int,
  ``"1e-3"`` and ``"0x1p-3"`` work as floats, trailing text is ignored; a
  float is then stored in a C float.  Only ASCII digits are digits (C's
  atoi stops at ``"６"``, where Python's int() would read it).
* A value that cannot be read (an int beyond a C int) is an error naming
  the file, the line and the key.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from .. import _validate

PathLike = Union[str, "os.PathLike[str]"]

# [0-9], never \d: \d (and int()) accept every Unicode digit, C's isdigit only ASCII.
_INT = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_HEX = r"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
_DEC = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_FLOAT = re.compile(r"[ \t\n\v\f\r]*([+-]?)(" + _HEX + "|" + _DEC + r"|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)",
                    re.IGNORECASE)


class CfgError(ValueError):
    """A cfg file that upstream would misread or crash on."""


def c_atoi(s: str) -> int:
    """C's atoi: leading whitespace, a sign, digits; 0 when none.  Values
    beyond a C int are refused (atoi's behaviour there is undefined)."""
    m = _INT.match(s)
    if not m:
        return 0
    v = int(m.group(1))
    if not -2**31 <= v < 2**31:
        raise CfgError(f"{s!r} does not fit a C int (atoi's result is undefined there)")
    return v


def c_atof(s: str) -> float:
    """C's atof (strtod): the longest prefix that is a number, as a double;
    0.0 when none.  Decimal, hexadecimal, inf and nan forms."""
    m = _FLOAT.match(s)
    if not m:
        return 0.0
    sign, body = m.group(1), m.group(2)
    low = body.lower()
    if low.startswith("0x"):
        v = float.fromhex(body)
    elif low.startswith("nan"):
        v = float("nan")
    else:
        v = float(body)
    return -v if sign == "-" else v


def c_float(s: str) -> np.float32:
    """atof, then stored in a C float (double rounded to float)."""
    with np.errstate(over="ignore"):
        return np.float32(c_atof(s))


def strip(line: str) -> str:
    """utils.c strip(): remove every ' ', '\\t' and '\\n'."""
    return line.replace(" ", "").replace("\t", "").replace("\n", "")


@dataclass
class Option:
    key: str
    value: Optional[str]  # None for a line without '='
    line: int
    used: bool = False


@dataclass
class Section:
    """One [section] of a cfg file with its options in file order."""

    type: str  # as written, brackets included, e.g. "[convolutional]"
    line: int
    options: List[Option] = field(default_factory=list)
    path: str = "<cfg>"  # the file, for error messages
    asked: set = field(default_factory=set, repr=False)  # every key looked up, found or not

    @property
    def name(self) -> str:
        return self.type[1:-1] if self.type.endswith("]") else self.type[1:]

    def option(self, key: str) -> Optional[Option]:
        """option_find: the first option with this key (marked used)."""
        self.asked.add(key)
        for o in self.options:
            if o.key == key:
                o.used = True
                return o
        return None

    def find(self, key: str) -> Optional[str]:
        o = self.option(key)
        return None if o is None else o.value

    def read(self, key: str, convert: Callable[[str], Any], default: Any = None) -> Any:
        """The option's value through ``convert`` (default when absent); a
        value that cannot be read is a CfgError naming file, line and key."""
        o = self.option(key)
        if o is None or o.value is None:
            return default
        try:
            return convert(o.value)
        except CfgError as exc:
            raise CfgError(f"{self.path}, line {o.line} ({self.type}): {key}={o.value}: {exc}") from None

    def has(self, key: str) -> bool:
        return self.find(key) is not None

    def get_int(self, key: str, default: int) -> int:
        return self.read(key, c_atoi, default)

    def get_float(self, key: str, default: float) -> np.float32:
        return self.read(key, c_float, np.float32(default))

    def get_str(self, key: str, default: Optional[str] = None) -> Optional[str]:
        v = self.find(key)
        return default if v is None else v

    def unused(self) -> List[Option]:
        return [o for o in self.options if not o.used]

    def _peek(self, key: str) -> Optional[Option]:
        """The option a lookup would find, without marking it used."""
        return next((o for o in self.options if o.key == key), None)

    def where(self, path: str, *keys: str) -> str:
        """Where an error lies: the file and the section's line, or, when
        given keys the section holds, their lines and values."""
        found = [o for o in (self._peek(k) for k in keys) if o is not None]
        if not found:
            return f"{path}, line {self.line} ({self.type})"
        opts = ", ".join(f"line {o.line} ({o.key}={o.value})" for o in found)
        return f"{path}, {opts}, in {self.type} of line {self.line}"

    def options_note(self) -> str:
        """The options the section's parse read, with their lines: said with
        an error that follows from them together (a size out of range)."""
        used = [o for o in self.options if o.used and o.value is not None]
        if not used:
            return ""
        return "; the section's options: " + ", ".join(f"{o.key}={o.value} (line {o.line})" for o in used)


def parse_cfg_text(text: str, path: str = "<cfg>") -> List[Section]:
    """read_cfg on a file's text."""
    sections: List[Section] = []
    errors: List[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # fgetl returns no line after a final newline
    for nu, raw in enumerate(lines, start=1):
        line = strip(raw)
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            sections.append(Section(type=line, line=nu, path=path))
            continue
        if not sections:
            # Upstream dereferences a NULL section here.
            raise CfgError(f"{path}, line {nu}: option {line!r} before any [section]")
        eq = line.find("=")
        if eq == len(line) - 1:
            errors.append(f"{path}, line {nu}: {line!r} has no value after '='")
            continue
        if eq < 0:
            sections[-1].options.append(Option(key=line, value=None, line=nu))
        else:
            sections[-1].options.append(Option(key=line[:eq], value=line[eq + 1:], line=nu))
    if errors:
        raise CfgError("; ".join(errors) + " (upstream prints 'Config file error' and skips such lines)")
    return sections


def read_cfg(path: PathLike) -> List[Section]:
    p = _validate.path_str(path, "cfg file")
    return parse_cfg_text(_validate.read_text(p, "cfg file", error=CfgError), p)


def int_list(value: str) -> List[int]:
    """A comma list read as upstream reads mask/layers: n = commas + 1, each
    by atoi from where the previous comma left off."""
    return [c_atoi(part) for part in value.split(",")]


def float_list(value: str) -> List[np.float32]:
    return [c_float(part) for part in value.split(",")]


def read_map(path: PathLike) -> List[int]:
    """utils.c read_map: one integer per line, by atoi.  A path that is not
    a regular file, or a line with a NUL byte (refused as soon as it is
    read, naming the line), is refused as read_labels refuses them."""
    p = _validate.path_str(path, "map file")
    lines = _validate.read_text(p, "map file", error=CfgError).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for nu, s in enumerate(lines, start=1):
        try:
            out.append(c_atoi(s))
        except CfgError as exc:
            raise CfgError(f"{p}, line {nu}: {exc}") from None
    return out


def unused_fields(sections: List[Section]) -> List[Tuple[int, str]]:
    """(line, "key = value") for every option never looked up."""
    out = []
    for s in sections:
        for o in s.unused():
            out.append((o.line, f"{o.key} = {'(null)' if o.value is None else o.value}"))
    return out


def as_dict(section: Section) -> Dict[str, Optional[str]]:
    """The section's options as upstream would find them (first occurrence)."""
    d: Dict[str, Optional[str]] = {}
    for o in section.options:
        d.setdefault(o.key, o.value)
    return d
