"""Shape rules of the language.

Broadcasting follows NumPy: shapes are aligned at their trailing axes; two sizes agree when
they are equal or one of them is 1; a missing leading axis counts as 1. `@` follows
`numpy.matmul`: 1-D·1-D is a dot product, a 1-D left operand is a row, a 1-D right operand
a column, and leading (batch) axes broadcast.
"""

from __future__ import annotations

import contextlib

Shape = tuple[int, ...]
MAX_SIZE = 2**31 - 1  # the largest size of an axis


class ShapeError(Exception):
    """A shape rule failed. `arg` (when set) says which argument is at fault."""

    def __init__(self, message: str, arg: int | None = None):
        super().__init__(message)
        self.message = message
        self.arg = arg


# While a library's parametric symmetries are checked with stand-in sizes, messages show the
# size names (`[n]`) instead of the stand-ins (`[7]`).
_size_names: dict[int, str] = {}


@contextlib.contextmanager
def naming_sizes(names: dict[int, str]):
    global _size_names
    saved, _size_names = _size_names, names
    try:
        yield
    finally:
        _size_names = saved


def show_size(d: int) -> str:
    return _size_names.get(d, str(d))


def show(shape: Shape) -> str:
    return "scalar" if shape == () else "[" + ", ".join(map(show_size, shape)) + "]"


def broadcast(*shapes: Shape) -> Shape:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            raise ShapeError(
                "shapes "
                + " and ".join(show(s) for s in shapes)
                + " do not broadcast: sizes "
                + " and ".join(map(show_size, sorted(sizes)))
                + f" differ on {_axis_words(axis)}"
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _axis_words(axis: int) -> str:
    return {-1: "the last axis", -2: "the second-to-last axis"}.get(axis, f"axis {axis}")


def matmul(a: Shape, b: Shape) -> Shape:
    if a == () or b == ():
        raise ShapeError("'@' needs arrays on both sides; use '*' to scale by a number")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ShapeError(
            f"'@' of {show(a)} and {show(b)}: the inner sizes {show_size(a2[-1])} and {show_size(b2[-2])} differ"
        )
    try:
        batch = broadcast(a2[:-2], b2[:-2])
    except ShapeError:
        raise ShapeError(f"'@' of {show(a)} and {show(b)}: the batch axes do not broadcast") from None
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def normalize_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for an array with {ndim} axes")
    return axis % ndim


def size(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
