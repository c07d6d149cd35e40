// The flow as a graph: pure functions from a definition's flow to canvas positions and edges,
// and the edits the canvas makes (each returns a new flow; the input is never changed).
// A node's ``position`` is where the canvas shows it (layout only, the orchestrator ignores
// it); nodes without one are laid out from the graph.

import { Flow, FlowNode, Transition } from "./types";

export interface Point {
  x: number;
  y: number;
}

export interface FlowEdge {
  id: string;
  source: string;
  target: string;
  label: string;
  /** The transition's index in its node, or null for a keypad node's ``next``. */
  index: number | null;
}

export const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const COLUMN = 320;
const ROW = 190;

/** Where a node's outgoing arrows point. */
function targets(node: FlowNode): string[] {
  const out = (node.transitions ?? []).map((t) => t.target);
  if (node.collect_digits?.next) out.push(node.collect_digits.next);
  return out;
}

/** The node a call starts in: ``initial``, else the first. */
export function initialOf(flow: Flow): string | undefined {
  return flow.initial ?? flow.nodes[0]?.id;
}

/** Columns by distance from the initial node (breadth first); unreachable nodes last. */
export function layout(flow: Flow): Record<string, Point> {
  const byId = new Map(flow.nodes.map((n) => [n.id, n]));
  const depth = new Map<string, number>();
  const start = initialOf(flow);
  const queue: string[] = start && byId.has(start) ? [start] : [];
  if (start && byId.has(start)) depth.set(start, 0);
  while (queue.length) {
    const id = queue.shift()!;
    for (const next of targets(byId.get(id)!)) {
      if (byId.has(next) && !depth.has(next)) {
        depth.set(next, depth.get(id)! + 1);
        queue.push(next);
      }
    }
  }
  const deepest = Math.max(-1, ...depth.values());
  const rows = new Map<number, number>();
  const positions: Record<string, Point> = {};
  for (const node of flow.nodes) {
    const column = depth.get(node.id) ?? deepest + 1;
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    positions[node.id] = { x: 40 + column * COLUMN, y: 40 + row * ROW };
  }
  return positions;
}

/** Every arrow: one per transition, one per keypad node's ``next``. */
export function edgesOf(flow: Flow): FlowEdge[] {
  const edges: FlowEdge[] = [];
  for (const node of flow.nodes) {
    (node.transitions ?? []).forEach((t, index) => {
      edges.push({ id: `t:${node.id}:${index}`, source: node.id, target: t.target, label: t.name, index });
    });
    if (node.collect_digits?.next) {
      const next = node.collect_digits.next;
      edges.push({ id: `d:${node.id}`, source: node.id, target: next, label: `keypad → ${node.collect_digits.variable}`, index: null });
    }
  }
  return edges;
}

/** A free spot for a new node: the second column, below everything. */
export function freeSpot(positions: Record<string, Point>): Point {
  const points = Object.values(positions);
  if (!points.length) return { x: 40, y: 40 };
  const columns = [...new Set(points.map((p) => p.x))].sort((a, b) => a - b);
  if (columns.length === 1) return { x: columns[0] + COLUMN, y: points[0].y };
  return { x: columns[1], y: Math.max(...points.map((p) => p.y)) + ROW };
}

function withNode(flow: Flow, id: string, change: (node: FlowNode) => FlowNode): Flow {
  return { ...flow, nodes: flow.nodes.map((n) => (n.id === id ? change(n) : n)) };
}

/** A canvas point as the definition keeps it: whole pixels, so a save diffs cleanly. */
function rounded(point: Point): Point {
  return { x: Math.round(point.x), y: Math.round(point.y) };
}

export function addNode(flow: Flow, id: string, position: Point): Flow {
  const node: FlowNode = { id, task: "", transitions: [], position: rounded(position) };
  return { ...flow, nodes: [...flow.nodes, node] };
}

/** With every node kept where the canvas shows it; the same flow if none moved. */
export function withPositions(flow: Flow, positions: Record<string, Point>): Flow {
  let moved = false;
  const nodes = flow.nodes.map((node) => {
    const shown = positions[node.id];
    if (!shown) return node;
    const position = rounded(shown);
    if (node.position?.x === position.x && node.position?.y === position.y) return node;
    moved = true;
    return { ...node, position };
  });
  return moved ? { ...flow, nodes } : flow;
}

/** Without the node and every transition into it. */
export function removeNode(flow: Flow, id: string): Flow {
  const nodes = flow.nodes
    .filter((n) => n.id !== id)
    .map((n) => ({ ...n, transitions: (n.transitions ?? []).filter((t) => t.target !== id) }));
  const initial = flow.initial === id ? (nodes[0]?.id ?? null) : flow.initial;
  return { ...flow, nodes, initial };
}

export function updateNode(flow: Flow, id: string, patch: Partial<FlowNode>): Flow {
  return withNode(flow, id, (n) => ({ ...n, ...patch }));
}

/** A function name for a new transition to ``target`` that its node does not use yet. */
export function transitionName(node: FlowNode, target: string): string {
  const base = `to_${target}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 60);
  const used = new Set((node.transitions ?? []).map((t) => t.name));
  let name = base;
  for (let n = 2; used.has(name); n += 1) name = `${base}_${n}`;
  return name;
}

/** With a new transition ``source`` → ``target``; also its index. */
export function addTransition(flow: Flow, source: string, target: string): [Flow, number] {
  const node = flow.nodes.find((n) => n.id === source);
  if (!node) return [flow, -1];
  const transition: Transition = {
    name: transitionName(node, target),
    description: `Move on to ${target}.`,
    target,
  };
  const transitions = [...(node.transitions ?? []), transition];
  return [updateNode(flow, source, { transitions }), transitions.length - 1];
}

export function updateTransition(flow: Flow, source: string, index: number, patch: Partial<Transition>): Flow {
  return withNode(flow, source, (n) => ({
    ...n,
    transitions: (n.transitions ?? []).map((t, i) => (i === index ? { ...t, ...patch } : t)),
  }));
}

export function removeTransition(flow: Flow, source: string, index: number): Flow {
  return withNode(flow, source, (n) => ({
    ...n,
    transitions: (n.transitions ?? []).filter((_, i) => i !== index),
  }));
}

/** The index in ``flow.nodes`` of each node, for the API's ``flow.nodes[i]`` paths. */
export function nodeIndex(flow: Flow, id: string): number {
  return flow.nodes.findIndex((n) => n.id === id);
}
