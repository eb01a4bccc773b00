"""Flows: each flow of the workspace with its triggers and runs (/flows), and one flow drawn as
a graph from its file with what its runs did at each step and its problems (/flows/{name}).

Any role may look. The graph is `flows.graph`'s layout drawn as SVG here, on the server; the
table under it lists the same steps (with where each goes) for a screen reader or a narrow
screen. Step counts are `store.flow_steps` (what each outcome means: `flows.graph.marks`);
problems are what `empathic flows check` finds: the file alone against the workspace's
topics and templates, then with the workspace's other flows (subflows, keywords).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.engine.runtime import Runtime, runtime_of
from empathic.flows import graph, loader, model
from empathic.store import flow_steps
from empathic.store import flows as flow_store
from empathic.web.auth import Person, signed_in
from empathic.web.pages import render

router = APIRouter(include_in_schema=False)
SignedIn = Annotated[Person, Depends(signed_in)]

# The drawing's geometry (SVG user units): a node's box, the gaps between boxes.
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 200, 66, 36, 64, 16
LABEL_CHARS = 22  # an edge's label is cut to this on the drawing (the table has it whole)
DETAIL_CHARS = 27  # what a step does, cut to fit its box
OUTCOME_NAMES = {
    "passed": "passed", "waited": "waited", "timed_out": "timed out", "handed_off": "handed off", "failed": "failed",
}
RUN_STATUSES = ("active", "done", "failed", "interrupted", "stopped", "skipped", "cancelled")


@dataclass(frozen=True, slots=True)
class FlowRow:
    name: str
    origin: str  # project | api
    version: int
    description: str
    events: list[str]
    keywords: list[str]
    runs: dict[str, int]  # by status
    total: int


@dataclass(frozen=True, slots=True)
class DrawnNode:
    x: int
    y: int
    kind: str
    id: str
    detail: str
    counts: str  # "3 passed · 1 waited"
    end: bool  # the pseudo-node END


@dataclass(frozen=True, slots=True)
class DrawnEdge:
    path: str  # SVG path data
    label: str  # cut to LABEL_CHARS
    full: str  # the whole label
    x: int
    y: int
    back: bool


@dataclass(frozen=True, slots=True)
class Drawing:
    width: int
    height: int
    nodes: list[DrawnNode]
    edges: list[DrawnEdge]
    node_width: int = NODE_W
    node_height: int = NODE_H


@dataclass(frozen=True, slots=True)
class Way:
    label: str
    target: str  # a step's id, or graph.END


@dataclass(frozen=True, slots=True)
class StepRow:
    id: str
    kind: str
    line: int
    detail: str
    counts: dict[str, int]  # by outcome
    ways: list[Way]


@dataclass(frozen=True, slots=True)
class SourceLine:
    number: int
    text: str
    problem: bool


@dataclass(frozen=True, slots=True)
class FlowPage:
    name: str
    origin: str
    version: int
    description: str
    events: list[str]
    keywords: list[str]
    runs: dict[str, int]
    total: int
    problems: list[loader.Problem]
    steps: list[StepRow] = field(default_factory=list)
    drawing: Drawing | None = None  # None: the file does not read as a flow at all
    source: list[SourceLine] = field(default_factory=list)


@router.get("/flows", response_class=HTMLResponse)
async def flows_page(request: Request, person: SignedIn) -> HTMLResponse:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        heads = await flow_store.current(conn, person.workspace_id)
        rows = await flow_store.versions(conn, [h["version_id"] for h in heads.values()])
        runs = await flow_steps.run_counts(conn, person.workspace_id)
    listed = []
    for name, head in sorted(heads.items()):
        row = rows[head["version_id"]]
        counts = runs.get(name, {})
        listed.append(FlowRow(
            name, head["origin"], row["version"], _description(row["id"], row["source"]), list(head["events"]),
            list(head["keywords"]), counts, sum(counts.values()),
        ))
    return render(request, "flows.html", person=person, flows=listed, statuses=RUN_STATUSES)


@router.get("/flows/{name}", response_class=HTMLResponse)
async def flow_page(name: str, request: Request, person: SignedIn) -> HTMLResponse:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        head = (await flow_store.current(conn, person.workspace_id)).get(name)
        if head is None:
            return render(request, "flow_missing.html", status=404, person=person, name=name)
        row = (await flow_store.versions(conn, [head["version_id"]]))[head["version_id"]]
        problems = await check(conn, rt, person.workspace_id, name, row["source"], head["origin"])
        counted = await flow_steps.step_counts(conn, person.workspace_id, name)
        runs = (await flow_steps.run_counts(conn, person.workspace_id, name)).get(name, {})
    counts: dict[str, dict[str, int]] = {}
    for c in counted:
        counts.setdefault(c.step, {})[c.outcome] = c.count
    page = FlowPage(
        name, head["origin"], row["version"], "", list(head["events"]), list(head["keywords"]), runs,
        sum(runs.values()), problems,
    )
    flow = _parse(row["id"], row["source"])
    marked = {p.line for p in problems}
    source = [SourceLine(n, text, n in marked) for n, text in enumerate(row["source"].splitlines(), start=1)]
    if flow is not None:
        layout = graph.layout(flow)
        page = FlowPage(
            page.name, page.origin, page.version, flow.description, page.events, page.keywords, runs, page.total,
            problems, _steps(flow, layout, counts), draw(layout, counts), source,
        )
    else:
        page = FlowPage(page.name, page.origin, page.version, "", page.events, page.keywords, runs, page.total,
                        problems, source=source)
    return render(request, "flow.html", person=person, flow=page, outcomes=OUTCOME_NAMES, statuses=RUN_STATUSES)


async def check(
    conn: AsyncConnection, rt: Runtime, workspace_id: str, name: str, source: str, origin: str
) -> list[loader.Problem]:
    """The flow's problems as `empathic flows check` finds them: the file against what the
    workspace knows (topics, templates), then together with its other current flows."""
    file = f"flows/{name}.yaml" if origin == "project" else f"{name}.yaml"
    try:
        flow = loader.parse(source, file=file, known=await rt.flows.known(conn, workspace_id))
    except loader.FlowError as exc:
        return list(exc.problems)
    heads = await flow_store.current(conn, workspace_id)
    rows = await flow_store.versions(conn, [h["version_id"] for n, h in heads.items() if n != name])
    together = loader.FlowSet()
    for other, head in heads.items():
        parsed = _parse(head["version_id"], rows[head["version_id"]]["source"]) if other != name else None
        if parsed is not None:
            together.flows[other] = parsed
            together.files[other] = other
    together.flows[name] = flow
    together.files[name] = file
    return [p for p in together.check() if p.file == file]


def draw(layout: graph.Graph, counts: dict[str, dict[str, int]]) -> Drawing:
    """The layout in SVG units: each layer a row, centred; an edge a curve from the bottom of
    its step to the top of the next (a loop back: out of the right side and into it)."""
    width = MARGIN * 2 + layout.width * NODE_W + max(layout.width - 1, 0) * GAP_X + GAP_X * 2  # room for loops
    in_layer: dict[int, int] = {}
    for n in layout.nodes:
        in_layer[n.layer] = in_layer.get(n.layer, 0) + 1
    place: dict[int, tuple[int, int]] = {}
    nodes = []
    for n in layout.nodes:
        row_width = in_layer[n.layer] * NODE_W + (in_layer[n.layer] - 1) * GAP_X
        x = MARGIN + (layout.width * NODE_W + (layout.width - 1) * GAP_X - row_width) // 2 + n.column * (NODE_W + GAP_X)
        y = MARGIN + n.layer * (NODE_H + GAP_Y)
        place[n.index] = (x, y)
        detail = n.detail if len(n.detail) <= DETAIL_CHARS else n.detail[: DETAIL_CHARS - 1] + "…"
        nodes.append(DrawnNode(x, y, n.kind, n.id, detail, _counts(counts.get(n.id, {})), n.id == graph.END))
    edges = []
    for e in layout.edges:
        (sx, sy), (tx, ty) = place[e.source], place[e.target]
        if e.back:
            x1, y1, x2, y2 = sx + NODE_W, sy + NODE_H // 2, tx + NODE_W, ty + NODE_H // 2
            bend = GAP_X + 24
            c1, c2 = (x1 + bend, y1), (x2 + bend, y2)
        else:
            x1, y1, x2, y2 = sx + NODE_W // 2, sy + NODE_H, tx + NODE_W // 2, ty
            c1, c2 = (x1, y1 + GAP_Y), (x2, y2 - GAP_Y)
        path = f"M{x1},{y1} C{c1[0]},{c1[1]} {c2[0]},{c2[1]} {x2},{y2}"
        # the label sits on the curve near its end, where the ways out of one step have spread apart
        t = 0.5 if e.back else 0.72
        mx, my = (round(_bezier(t, x1, c1[0], c2[0], x2)), round(_bezier(t, y1, c1[1], c2[1], y2)))
        label = e.label if len(e.label) <= LABEL_CHARS else e.label[: LABEL_CHARS - 1] + "…"
        edges.append(DrawnEdge(path, label, e.label, mx, my, e.back))
    height = MARGIN * 2 + layout.layers * NODE_H + max(layout.layers - 1, 0) * GAP_Y
    return Drawing(width, height, nodes, edges)


def _bezier(t: float, p0: int, p1: int, p2: int, p3: int) -> float:
    u = 1 - t
    return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3


def _steps(flow: model.Flow, layout: graph.Graph, counts: dict[str, dict[str, int]]) -> list[StepRow]:
    ids = {n.index: n.id for n in layout.nodes}
    out: dict[int, list[Way]] = {}
    for e in layout.edges:
        out.setdefault(e.source, []).append(Way(e.label, ids[e.target]))
    return [
        StepRow(n.id, n.kind, n.line, n.detail, counts.get(n.id, {}), out.get(n.index, []))
        for n in layout.nodes if n.id != graph.END
    ]


def _counts(by_outcome: dict[str, int]) -> str:
    return " · ".join(f"{by_outcome[o]} {OUTCOME_NAMES[o]}" for o in graph.STEP_OUTCOMES if by_outcome.get(o))


@lru_cache(maxsize=256)
def _parse(version_id: str, source: str) -> model.Flow | None:
    """A stored version as a flow (checked when it was stored; None if it no longer reads)."""
    try:
        return loader.parse(source)
    except loader.FlowError:
        return None


def _description(version_id: str, source: str) -> str:
    flow = _parse(version_id, source)
    return flow.description if flow is not None else ""
