"""The one IR walker (`ir.walk`, `ir.map_children`, `ir.transform`): every subexpression, in
a fixed order, and the walkers built on it."""

from __future__ import annotations

from gaugedsl import ir
from gaugedsl.check import check_text
from gaugedsl.diagnostics import Span

S = Span("<t>", 1, 1, 1, 2)


def ref(name: str, kind: str = "param") -> ir.Ref:
    return ir.Ref(kind, name, (), S)


def call(func: str, *args, **static) -> ir.Call:
    return ir.Call(func, tuple(args), tuple(static.items()), (), S)


# a[0] + f([b, g(c)], d): every kind of node with subexpressions.
TREE = ir.Op(
    "+",
    (
        ir.Index(ref("a"), (0,), (), S),
        call("f", ir.Stack((ref("b"), call("g", ref("c"))), (2,), S), ref("d")),
    ),
    (),
    S,
)


def _label(e) -> str:
    return e.name if isinstance(e, ir.Ref) else e.func if isinstance(e, ir.Call) else type(e).__name__


def test_walk_visits_each_node_before_what_is_inside_it_left_to_right():
    assert [_label(e) for e in ir.walk(TREE)] == ["Op", "Index", "a", "f", "Stack", "b", "g", "c", "d"]


def test_transform_sees_inner_nodes_first_and_rebuilds_the_tree():
    seen = []

    def rename(e):
        seen.append(_label(e))
        return ir.Ref(e.kind, e.name.upper(), e.shape, e.span) if isinstance(e, ir.Ref) else e

    out = ir.transform(TREE, rename)
    assert seen == ["a", "Index", "b", "c", "g", "Stack", "d", "f", "Op"]
    assert [e.name for e in ir.walk(out) if isinstance(e, ir.Ref)] == ["A", "B", "C", "D"]
    assert ir.transform(TREE, lambda e: e) == TREE


def test_map_children_touches_one_level_only():
    out = ir.map_children(TREE, lambda e: ref("x"))
    assert out.args == (ref("x"), ref("x")) and ir.map_children(ref("a"), lambda e: ref("x")) == ref("a")


def test_random_sites_are_numbered_a_call_before_its_arguments():
    model = check_text(
        "model m\nparam u : R[3] = abs(normal(0, 1)) + normal(uniform(0, 1), 1)\nloss = sum(u^2)\n", "<m>"
    )
    sites = [(e.func, e.site) for e in ir.walk(model.params[0].init) if isinstance(e, ir.Call)]
    assert sites == [("abs", None), ("normal", "u#0"), ("normal", "u#1"), ("uniform", "u#2")]
