"""Runs filters and orders of the local W&B server agree with a plain-Python reference."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers.wandb import ServerThread, WandbServer, public_api
from tests.servers.wandb.filters import FilterError, matches, sort_runs

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
STATES = ["running", "finished", "failed", "crashed", "killed"]
TAGS = ["a", "b", "c"]
NOTHING = object()

# ---- the reference: deliberately naive, one branch per case ---------------------------


def ref_value(doc: dict[str, Any], field: str) -> Any:
    if field.startswith("config."):
        entry = doc["config"].get(field.split(".")[1])
        return NOTHING if entry is None or entry["value"] is None else entry["value"]
    if field.startswith("summary_metrics."):
        value = doc["summary"].get(field.split(".", 1)[1])
        return NOTHING if value is None else value
    value = doc.get(field)
    return NOTHING if value is None else value


def same_type(a: Any, b: Any) -> bool:
    def kind(x: Any) -> str:
        if isinstance(x, bool):
            return "bool"
        if isinstance(x, int | float):
            return "num"
        return type(x).__name__

    return kind(a) == kind(b)


def ref_eq(value: Any, operand: Any) -> bool:
    if value is NOTHING:
        return operand is None
    if isinstance(value, list):
        return operand in value
    return same_type(value, operand) and value == operand


def as_time(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ref_leaf(doc: dict[str, Any], field: str, op: str, operand: Any) -> bool:
    value = ref_value(doc, field)
    if field in ("createdAt", "updatedAt"):
        operand = [as_time(o) for o in operand] if isinstance(operand, list) else as_time(operand)
    if op == "$eq":
        return ref_eq(value, operand)
    if op == "$ne":
        return not ref_eq(value, operand)
    if op == "$in":
        return any(ref_eq(value, o) for o in operand)
    if op == "$nin":
        return not any(ref_eq(value, o) for o in operand)
    if op == "$exists":
        return (value is not NOTHING) is operand
    if op == "$regex":
        items = value if isinstance(value, list) else [value]
        return any(isinstance(i, str) and re.search(operand, i) is not None for i in items)
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is NOTHING or not same_type(item, operand) or isinstance(item, bool):
            continue
        if op == "$gt" and item > operand:
            return True
        if op == "$gte" and item >= operand:
            return True
        if op == "$lt" and item < operand:
            return True
        if op == "$lte" and item <= operand:
            return True
    return False


def ref_match(doc: dict[str, Any], tree: tuple[Any, ...]) -> bool:
    if tree[0] == "leaf":
        _, field, op, operand = tree
        return ref_leaf(doc, field, op, operand)
    kind, children = tree
    results = [ref_match(doc, c) for c in children]
    if kind == "$and":
        return all(results)
    if kind == "$or":
        return any(results)
    return not any(results)


def to_mongo(tree: tuple[Any, ...], implicit_eq: bool) -> dict[str, Any]:
    if tree[0] == "leaf":
        _, field, op, operand = tree
        if op == "$eq" and implicit_eq and not isinstance(operand, dict):
            return {field: operand}
        return {field: {op: operand}}
    kind, children = tree
    return {kind: [to_mongo(c, implicit_eq) for c in children]}


def ref_order(docs: list[dict[str, Any]], field: str, descending: bool) -> list[str]:
    def compare(a: tuple[int, dict[str, Any]], b: tuple[int, dict[str, Any]]) -> int:
        va, vb = ref_value(a[1], field), ref_value(b[1], field)
        if va is NOTHING or vb is NOTHING:
            if va is NOTHING and vb is NOTHING:
                return a[0] - b[0]
            return 1 if va is NOTHING else -1
        if va == vb:
            return a[0] - b[0]
        smaller = va < vb
        return (-1 if smaller else 1) * (-1 if descending else 1)

    ranked = sorted(enumerate(docs), key=functools.cmp_to_key(compare))
    return [doc["name"] for _, doc in ranked]


# ---- strategies ----------------------------------------------------------------------

times = st.integers(0, 20).map(lambda m: EPOCH + timedelta(minutes=m))
numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0]))


@st.composite
def run_docs(draw: st.DrawFn, index: int) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if draw(st.booleans()):
        config["lr"] = {"value": draw(numbers), "desc": None}
    if draw(st.booleans()):
        config["opt"] = {"value": draw(st.sampled_from(["adam", "sgd"])), "desc": None}
    summary: dict[str, Any] = {}
    if draw(st.booleans()):
        summary["acc"] = draw(numbers)
    created = draw(times)
    return {
        "name": f"run{index:03d}",
        "displayName": draw(st.sampled_from(["alpha", "beta", "gamma-1"])),
        "state": draw(st.sampled_from(STATES)),
        "createdAt": created,
        "updatedAt": created + timedelta(minutes=draw(st.integers(0, 5))),
        "heartbeatAt": created,
        "tags": draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)),
        "sweep": draw(st.sampled_from([None, "sw1", "sw2"])),
        "group": None,
        "jobType": None,
        "config": config,
        "summary": summary,
    }


docs_lists = (
    st.integers(0, 12).flatmap(lambda n: st.tuples(*[run_docs(i) for i in range(n)])).map(list)
)

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "state": st.sampled_from([*STATES, None]),
    "name": st.sampled_from(["run000", "run001", "run005"]),
    "displayName": st.sampled_from(["alpha", "beta"]),
    "tags": st.sampled_from([*TAGS, None]),
    "sweep": st.sampled_from(["sw1", "sw2", None]),
    "config.lr": st.one_of(numbers, st.none()),
    "config.opt": st.sampled_from(["adam", "sgd", None]),
    "summary_metrics.acc": st.one_of(numbers, st.none()),
    "createdAt": times.map(lambda t: t.isoformat().replace("+00:00", "Z")),
    "updatedAt": times.map(lambda t: t.replace(tzinfo=None).isoformat()),
}


STRING_FIELDS = {"state", "name", "displayName", "tags", "sweep", "config.opt"}


@st.composite
def leaves(draw: st.DrawFn) -> tuple[Any, ...]:
    field = draw(st.sampled_from(sorted(FIELD_VALUES)))
    ops = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]
    if field in STRING_FIELDS:
        ops.append("$regex")
    op = draw(st.sampled_from(ops))
    values = FIELD_VALUES[field]
    if op in ("$in", "$nin"):
        operand: Any = draw(st.lists(values, max_size=3))
    elif op == "$exists":
        operand = draw(st.booleans())
    elif op == "$regex":
        operand = draw(st.sampled_from(["^run00", "a", "^s", "gamma", "1$"]))
    else:
        operand = draw(values)
        if op in ("$gt", "$gte", "$lt", "$lte") and operand is None:
            operand = 0
    return ("leaf", field, op, operand)


trees = st.recursive(
    leaves(),
    lambda inner: st.tuples(
        st.sampled_from(["$and", "$or", "$nor"]), st.lists(inner, min_size=1, max_size=3)
    ),
    max_leaves=6,
)

ORDER_FIELDS = {
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "heartbeat_at": "heartbeatAt",
    "summary_metrics.acc": "summary_metrics.acc",
    "config.lr.value": "config.lr",
}


# ---- pure tests ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=docs_lists, tree=trees, implicit=st.booleans())
def test_filters_agree_with_the_reference(
    docs: list[dict[str, Any]], tree: tuple[Any, ...], implicit: bool
) -> None:
    flt = to_mongo(tree, implicit)
    got = [d["name"] for d in docs if matches(d, flt)]
    want = [d["name"] for d in docs if ref_match(d, tree)]
    assert got == want, flt


@settings(max_examples=150, deadline=None)
@given(
    docs=docs_lists,
    key=st.sampled_from(sorted(ORDER_FIELDS)),
    descending=st.booleans(),
    sign=st.booleans(),
)
def test_orders_agree_with_the_reference_and_put_missing_keys_last(
    docs: list[dict[str, Any]], key: str, descending: bool, sign: bool
) -> None:
    order = ("-" if descending else "+" if sign else "") + key
    got = [d["name"] for d in sort_runs(docs, lambda d: d, order)]
    assert got == ref_order(docs, ORDER_FIELDS[key], descending)


@pytest.mark.parametrize(
    "flt",
    [
        {"createdAt": {"$gt": 1700000000.0}},
        {"state": {"$bogus": 1}},
        {"$xor": []},
        {"config": 1},
        {"name": {"$regex": "("}},
    ],
)
def test_malformed_filters_are_rejected(flt: dict[str, Any]) -> None:
    doc = {
        "name": "r",
        "createdAt": EPOCH,
        "config": {},
        "summary": {},
        "tags": [],
        "state": "running",
    }
    with pytest.raises(FilterError):
        matches(doc, flt)


# ---- through wandb.Api over the seed API ------------------------------------------------


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[ServerThread, list[dict[str, Any]]]]:
    """Seed 40 runs into a threaded server and return it with the runs' documents."""
    import random

    rng = random.Random(7)
    runs = []
    for i in range(40):
        created = EPOCH + timedelta(minutes=rng.randint(0, 30))
        run: dict[str, Any] = {
            "entity": "lab",
            "project": "flt",
            "name": f"run{i:03d}",
            "displayName": rng.choice(["alpha", "beta"]),
            "state": rng.choice(STATES),
            "createdAt": created.isoformat(),
            "updatedAt": (created + timedelta(minutes=rng.randint(0, 9))).isoformat(),
            "tags": rng.sample(TAGS, rng.randint(0, 2)),
            "sweep": rng.choice([None, "sw1"]),
            "config": {"lr": rng.choice([0.1, 0.01, 0.001])} if rng.random() < 0.8 else {},
            "summary": {"acc": round(rng.random(), 3)} if rng.random() < 0.8 else {},
        }
        runs.append(run)
    docs = [
        {
            **r,
            "createdAt": datetime.fromisoformat(r["createdAt"]),
            "updatedAt": datetime.fromisoformat(r["updatedAt"]),
            "heartbeatAt": datetime.fromisoformat(r["createdAt"]),
            "config": {k: {"value": v} for k, v in r["config"].items()},
        }
        for r in runs
    ]
    with ServerThread(WandbServer()) as thread:
        thread.server.seed({"runs": runs})
        yield thread, docs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tree", "order"),
    [
        (("$and", [("leaf", "state", "$in", ["finished", "crashed"])]), "-created_at"),
        (("leaf", "updatedAt", "$gt", "2026-01-01T00:15:00Z"), "+updated_at"),
        (
            ("$or", [("leaf", "tags", "$eq", "a"), ("leaf", "config.lr", "$lte", 0.01)]),
            "-summary_metrics.acc",
        ),
        (("$nor", [("leaf", "sweep", "$exists", True)]), "+config.lr.value"),
        (("leaf", "summary_metrics.acc", "$gte", 0.5), "+summary_metrics.acc"),
    ],
)
def test_public_api_runs_agree_with_the_reference(
    seeded: tuple[ServerThread, list[dict[str, Any]]], tree: tuple[Any, ...], order: str
) -> None:
    thread, docs = seeded
    api = public_api(thread.base_url)
    got = [r.id for r in api.runs("lab/flt", filters=to_mongo(tree, True), order=order, per_page=7)]
    key = ORDER_FIELDS[order.lstrip("+-")]
    want = [
        n
        for n in ref_order(docs, key, order.startswith("-"))
        if ref_match(next(d for d in docs if d["name"] == n), tree)
    ]
    assert got == want
