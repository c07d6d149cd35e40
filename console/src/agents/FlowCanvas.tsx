import {
  Background,
  Connection,
  Controls,
  Edge,
  Handle,
  MarkerType,
  MiniMap,
  Node,
  NodeChange,
  NodeProps,
  Position,
  ReactFlow,
  ReactFlowInstance,
  applyNodeChanges,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { FormEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { NODE_ID, Point, addNode, addTransition, edgesOf, freeSpot, initialOf, layout, nodeIndex, removeNode, removeTransition, withPositions } from "./flowGraph";
import { FlowPanel, Selection } from "./FlowPanel";
import { FieldErrors, Flow, FlowNode, problemsAt } from "./types";

type StepData = { node: FlowNode; initial: boolean; problems: number };
type StepNode = Node<StepData, "step">;

function StepView({ data, selected }: NodeProps<StepNode>) {
  const { node, initial, problems } = data;
  const kind = node.handoff ? "handoff" : node.collect_digits ? "keypad" : node.end ? "end" : "llm";
  const pre = node.pre_actions?.length ?? 0;
  const post = node.post_actions?.length ?? 0;
  return (
    <div className={`step kind-${kind}${selected ? " selected" : ""}${problems ? " invalid" : ""}`} data-testid={`node-${node.id}`}>
      <Handle type="target" position={Position.Left} />
      <div className="step-head">
        <span className="step-id">{node.id}</span>
        {initial && <span className="step-badge start">start</span>}
        {kind !== "llm" && <span className={`step-badge ${kind}`}>{kind}</span>}
      </div>
      <div className="step-task">
        {node.handoff ? `→ agent ${node.handoff.agent_id}` : node.collect_digits ? `keypad → ${node.collect_digits.variable}` : node.task || node.role || <span className="muted">No task yet</span>}
      </div>
      <div className="step-meta">
        <span>{node.tools === null || node.tools === undefined ? "all tools" : `${node.tools.length} tools`}</span>
        {pre > 0 && <span>pre {pre}</span>}
        {post > 0 && <span>post {post}</span>}
        {problems > 0 && <span className="bad">{problems} problem{problems > 1 ? "s" : ""}</span>}
      </div>
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const NODE_TYPES = { step: StepView };

/** The flow on a canvas, with a side panel for the selection. */
export function FlowCanvas({
  flow,
  tools,
  errors,
  onChange,
  placed,
}: {
  flow: Flow;
  tools: string[];
  errors: FieldErrors;
  onChange: (flow: Flow) => void;
  /** Where nodes were put on the canvas (kept by the page while the agent is open). */
  placed: { current: Record<string, Point> };
}) {
  const [nodes, setNodes] = useState<StepNode[]>([]);
  const [selection, setSelection] = useState<Selection>(null);
  const [newId, setNewId] = useState("");
  const [idError, setIdError] = useState("");
  const view = useRef<ReactFlowInstance<StepNode, Edge> | null>(null);
  const start = initialOf(flow);

  useEffect(() => {
    const auto = layout(flow);
    setNodes((previous) => {
      const before = new Map(previous.map((n) => [n.id, n]));
      return flow.nodes.map((node) => {
        const old = before.get(node.id);
        const data: StepData = {
          node,
          initial: node.id === start,
          problems: problemsAt(errors, `flow.nodes[${nodeIndex(flow, node.id)}]`).length,
        };
        // A kept position wins (a reload, a discard); else where the node was on the canvas.
        const position = node.position ?? old?.position ?? placed.current[node.id] ?? auto[node.id];
        placed.current[node.id] = position;
        return old ? { ...old, position, data } : { id: node.id, type: "step", position, data };
      });
    });
  }, [flow, errors, start, placed]);

  const edges: Edge[] = useMemo(
    () =>
      edgesOf(flow).map((edge) => {
        const chosen = selection?.kind === "edge" && edge.index !== null && selection.source === edge.source && selection.index === edge.index;
        return {
          id: edge.id,
          source: edge.source,
          target: edge.target,
          label: edge.label,
          selected: chosen,
          selectable: edge.index !== null,
          deletable: edge.index !== null,
          className: edge.index === null ? "edge-keypad" : chosen ? "edge-chosen" : "",
          markerEnd: { type: MarkerType.ArrowClosed, width: 18, height: 18 },
          labelBgPadding: [6, 3] as [number, number],
          labelBgBorderRadius: 6,
        };
      }),
    [flow, selection],
  );

  const onNodesChange = useCallback((changes: NodeChange<StepNode>[]) => {
    const kept = changes.filter((c) => c.type !== "remove");
    setNodes((current) => {
      const next = applyNodeChanges(kept, current);
      for (const node of next) placed.current[node.id] = node.position;
      return next;
    });
  }, [placed]);

  // A drag ends: every node is kept where it is shown, so the saved layout is the one seen.
  const onNodeDragStop = useCallback(
    (_: unknown, __: StepNode, dragged: StepNode[]) => {
      const shown = Object.fromEntries([...nodes, ...dragged].map((n) => [n.id, n.position]));
      const next = withPositions(flow, shown);
      if (next !== flow) onChange(next);
    },
    [flow, nodes, onChange],
  );

  const onConnect = useCallback(
    (connection: Connection) => {
      if (!connection.source || !connection.target) return;
      const [next, index] = addTransition(flow, connection.source, connection.target);
      if (index < 0) return;
      onChange(next);
      setSelection({ kind: "edge", source: connection.source, index });
    },
    [flow, onChange],
  );

  const onDelete = useCallback(
    ({ nodes: gone, edges: cut }: { nodes: Node[]; edges: Edge[] }) => {
      let next = flow;
      // Highest index first, so the indexes of a node's other transitions stay right.
      const transitions = cut
        .map((e) => e.id.match(/^t:(.+):(\d+)$/))
        .filter((m): m is RegExpMatchArray => m !== null)
        .sort((a, b) => Number(b[2]) - Number(a[2]));
      for (const [, source, index] of transitions) next = removeTransition(next, source, Number(index));
      for (const node of gone) next = removeNode(next, node.id);
      setSelection(null);
      onChange(next);
    },
    [flow, onChange],
  );

  function add(event: FormEvent) {
    event.preventDefault();
    const id = newId.trim();
    if (!NODE_ID.test(id)) return setIdError("A node id is 1 to 64 letters, digits, '_' or '-'.");
    if (flow.nodes.some((n) => n.id === id)) return setIdError(`There is a node '${id}' already.`);
    setIdError("");
    const spot = freeSpot(Object.fromEntries(nodes.map((n) => [n.id, n.position])));
    placed.current[id] = spot;
    onChange(addNode(flow, id, spot));
    setSelection({ kind: "node", id });
    setNewId("");
    // Once the new node is on the canvas, show everything again.
    window.setTimeout(() => view.current?.fitView({ padding: 0.25, maxZoom: 1 }), 80);
  }

  return (
    <div className="flow-editor">
      <div className="flow-main card">
        <form className="flow-toolbar" onSubmit={add}>
          <input aria-label="New node id" placeholder="new node id" value={newId} onChange={(e) => setNewId(e.target.value)} />
          <button type="submit" className="primary">+ Add node</button>
          {idError && <span className="field-error">{idError}</span>}
          <span className="muted small flow-count">{flow.nodes.length} nodes · {edges.length} transitions</span>
        </form>
        <div className="canvas" data-testid="flow-canvas">
          <ReactFlow<StepNode, Edge>
            nodes={nodes}
            edges={edges}
            nodeTypes={NODE_TYPES}
            onNodesChange={onNodesChange}
            onNodeDragStop={onNodeDragStop}
            onConnect={onConnect}
            onInit={(instance) => { view.current = instance; }}
            onDelete={onDelete}
            onNodeClick={(_, node) => setSelection({ kind: "node", id: node.id })}
            onEdgeClick={(_, edge) => {
              const match = edge.id.match(/^t:(.+):(\d+)$/);
              if (match) setSelection({ kind: "edge", source: match[1], index: Number(match[2]) });
            }}
            onPaneClick={() => setSelection(null)}
            isValidConnection={(c) => c.source !== c.target}
            deleteKeyCode={["Delete", "Backspace"]}
            fitView
            fitViewOptions={{ padding: 0.25, maxZoom: 1 }}
            minZoom={0.3}
          >
            <Background gap={20} size={1.2} color="#cbd5e1" />
            <MiniMap pannable zoomable position="top-right" nodeColor="#c7d2fe" maskColor="rgba(241,245,249,0.7)" />
            <Controls showInteractive={false} />
          </ReactFlow>
        </div>
      </div>
      <FlowPanel flow={flow} tools={tools} errors={errors} onChange={onChange} onSelect={setSelection} selection={selection} />
    </div>
  );
}
