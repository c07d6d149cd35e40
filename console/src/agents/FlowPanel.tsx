import { ActionsEditor } from "./ActionsEditor";
import { nodeIndex, removeNode, removeTransition, updateNode, updateTransition } from "./flowGraph";
import { JsonField, Problems } from "./JsonField";
import { FieldErrors, Flow, FlowNode, JsonObject, Transition, problemsAt } from "./types";

export type Selection = { kind: "node"; id: string } | { kind: "edge"; source: string; index: number } | null;

interface PanelProps {
  flow: Flow;
  tools: string[];
  errors: FieldErrors;
  onChange: (flow: Flow) => void;
  onSelect: (selection: Selection) => void;
}

/** The side panel: the selected node's messages, tools and actions, or a transition. */
export function FlowPanel({ selection, ...props }: PanelProps & { selection: Selection }) {
  if (selection?.kind === "node") {
    const node = props.flow.nodes.find((n) => n.id === selection.id);
    if (node) return <NodePanel node={node} {...props} />;
  }
  if (selection?.kind === "edge") {
    const node = props.flow.nodes.find((n) => n.id === selection.source);
    const transition = node?.transitions?.[selection.index];
    if (node && transition) return <TransitionPanel node={node} index={selection.index} transition={transition} {...props} />;
  }
  return (
    <aside className="flow-panel" data-testid="flow-panel">
      <h3>Flow</h3>
      <p className="muted">
        Select a node to edit its role, task, tools and actions. Drag from a node's right handle to
        another node's left handle to add a transition; select an arrow to edit it.
      </p>
      <p className="muted small">Delete removes the selected node or arrow.</p>
    </aside>
  );
}

function NodePanel({ node, flow, tools, errors, onChange, onSelect }: PanelProps & { node: FlowNode }) {
  const path = `flow.nodes[${nodeIndex(flow, node.id)}]`;
  const set = (patch: Partial<FlowNode>) => onChange(updateNode(flow, node.id, patch));
  const initial = (flow.initial ?? flow.nodes[0]?.id) === node.id;
  const offered = node.tools ?? null;
  const exact = (p: string) => (errors[p] ? [errors[p]] : []);
  const own = [
    ...exact(path), ...exact(`${path}.transitions`), ...problemsAt(errors, `${path}.id`),
    ...problemsAt(errors, `${path}.handoff`), ...problemsAt(errors, `${path}.collect_digits`),
  ];

  return (
    <aside className="flow-panel" data-testid="flow-panel" data-node-id={node.id}>
      <div className="panel-head">
        <h3><span className="muted small">Node</span> {node.id}</h3>
        {initial ? <span className="tag">start</span> : (
          <button type="button" className="ghost small" onClick={() => onChange({ ...flow, initial: node.id })}>Start here</button>
        )}
      </div>
      <Problems problems={own} />
      <label className="field">
        <span className="field-label">Role (system prompt while here)</span>
        <textarea aria-label="Node role" rows={3} placeholder="The agent's prompt" value={node.role ?? ""} onChange={(e) => set({ role: e.target.value || null })} />
        <Problems problems={problemsAt(errors, `${path}.role`)} />
      </label>
      <label className="field">
        <span className="field-label">Task</span>
        <textarea aria-label="Node task" rows={3} placeholder="What the agent should do here ({{variables}})" value={node.task ?? ""} onChange={(e) => set({ task: e.target.value })} />
        <Problems problems={problemsAt(errors, `${path}.task`)} />
      </label>
      <div className="field">
        <span className="field-label">Tools offered here</span>
        <label className="check">
          <input type="checkbox" checked={offered === null} onChange={(e) => set({ tools: e.target.checked ? null : [] })} />
          Every agent tool
        </label>
        {offered !== null && (
          <div className="scopes">
            {tools.map((tool) => (
              <label className="check" key={tool}>
                <input type="checkbox" checked={offered.includes(tool)} onChange={(e) => set({ tools: e.target.checked ? [...offered, tool] : offered.filter((t) => t !== tool) })} />
                {tool}
              </label>
            ))}
            {tools.length === 0 && <span className="muted small">The agent has no tools.</span>}
          </div>
        )}
        <Problems problems={problemsAt(errors, `${path}.tools`)} />
      </div>
      <div className="checks">
        <label className="check">
          <input type="checkbox" checked={node.respond_immediately ?? true} onChange={(e) => set({ respond_immediately: e.target.checked })} />
          Respond on entry
        </label>
        <label className="check">
          <input type="checkbox" checked={node.end ?? false} onChange={(e) => set({ end: e.target.checked })} />
          End the call here
        </label>
      </div>
      <label className="field">
        <span className="field-label">Hand off to agent</span>
        <input aria-label="Handoff agent" placeholder="none" value={node.handoff?.agent_id ?? ""} onChange={(e) => set({ handoff: e.target.value ? { ...(node.handoff ?? {}), agent_id: e.target.value } : null })} />
      </label>
      <ActionsEditor title="Pre-actions" path={`${path}.pre_actions`} actions={node.pre_actions ?? []} tools={tools} errors={errors} onChange={(pre_actions) => set({ pre_actions })} />
      <ActionsEditor title="Post-actions" path={`${path}.post_actions`} actions={node.post_actions ?? []} tools={tools} errors={errors} onChange={(post_actions) => set({ post_actions })} />
      <div className="field">
        <span className="field-label">Transitions</span>
        {(node.transitions ?? []).map((t, index) => (
          <button type="button" key={`${t.name}-${index}`} className="ghost transition-link" onClick={() => onSelect({ kind: "edge", source: node.id, index })}>
            {t.name} → {t.target}
          </button>
        ))}
        {!(node.transitions ?? []).length && <span className="muted small">None: drag from this node's right handle.</span>}
      </div>
      <button type="button" className="danger" onClick={() => { onSelect(null); onChange(removeNode(flow, node.id)); }}>Delete node</button>
    </aside>
  );
}

function TransitionPanel({
  node, index, transition, flow, errors, onChange, onSelect,
}: PanelProps & { node: FlowNode; index: number; transition: Transition }) {
  const path = `flow.nodes[${nodeIndex(flow, node.id)}].transitions[${index}]`;
  const set = (patch: Partial<Transition>) => onChange(updateTransition(flow, node.id, index, patch));
  return (
    <aside className="flow-panel" data-testid="flow-panel" data-transition={`${node.id}:${index}`}>
      <div className="panel-head">
        <h3><span className="muted small">Transition</span> {node.id} → {transition.target}</h3>
      </div>
      <label className="field">
        <span className="field-label">Function name</span>
        <input aria-label="Transition name" className="mono" value={transition.name} onChange={(e) => set({ name: e.target.value })} />
        <Problems problems={problemsAt(errors, `${path}.name`)} />
      </label>
      <label className="field">
        <span className="field-label">Condition (when the LLM calls it)</span>
        <textarea aria-label="Transition condition" rows={3} value={transition.description} onChange={(e) => set({ description: e.target.value })} />
        <Problems problems={problemsAt(errors, `${path}.description`)} />
      </label>
      <label className="field">
        <span className="field-label">Target node</span>
        <select aria-label="Transition target" value={transition.target} onChange={(e) => set({ target: e.target.value })}>
          {[...new Set([...flow.nodes.map((n) => n.id), transition.target])].map((id) => <option key={id}>{id}</option>)}
        </select>
        <Problems problems={problemsAt(errors, `${path}.target`)} />
      </label>
      <label className="field">
        <span className="field-label">History</span>
        <select aria-label="Transition history" value={transition.context ?? "keep"} onChange={(e) => set({ context: e.target.value as Transition["context"] })}>
          <option value="keep">keep the conversation</option>
          <option value="reset">reset it</option>
          <option value="reset_with_summary">reset to a summary</option>
        </select>
      </label>
      <JsonField
        label="Arguments (JSON Schema)"
        value={transition.parameters ?? { type: "object", properties: {} }}
        onChange={(parameters) => set({ parameters: parameters as JsonObject })}
        problems={problemsAt(errors, `${path}.parameters`)}
      />
      <div className="row">
        <button type="button" className="ghost" onClick={() => onSelect({ kind: "node", id: node.id })}>← {node.id}</button>
        <button type="button" className="danger" onClick={() => { onSelect(null); onChange(removeTransition(flow, node.id, index)); }}>Delete transition</button>
      </div>
    </aside>
  );
}
