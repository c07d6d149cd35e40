import { JsonField, Problems } from "./JsonField";
import { FieldErrors, FlowAction, Json, JsonObject, problemsAt } from "./types";

type Kind = "say" | "tool" | "set";

function kindOf(action: FlowAction): Kind {
  if (action.tool !== undefined && action.tool !== null) return "tool";
  if (action.set !== undefined && action.set !== null) return "set";
  return "say";
}

function blank(kind: Kind, tools: string[]): FlowAction {
  if (kind === "tool") return { tool: tools[0] ?? "", args: {} };
  if (kind === "set") return { set: {} };
  return { say: "" };
}

/** A node's pre- or post-actions: say a line, call a tool, set variables. */
export function ActionsEditor({
  title,
  path,
  actions,
  tools,
  errors,
  onChange,
}: {
  title: string;
  path: string;
  actions: FlowAction[];
  tools: string[];
  errors: FieldErrors;
  onChange: (actions: FlowAction[]) => void;
}) {
  const put = (index: number, action: FlowAction) =>
    onChange(actions.map((a, i) => (i === index ? action : a)));

  return (
    <div className="actions" data-testid={`actions-${title.toLowerCase().replace(/\W+/g, "-")}`}>
      <div className="section-head">
        <span className="field-label">{title}</span>
        <button type="button" className="ghost small" onClick={() => onChange([...actions, { say: "" }])}>+ Add</button>
      </div>
      {actions.length === 0 && <div className="muted small">None.</div>}
      {actions.map((action, index) => {
        const kind = kindOf(action);
        return (
          <div className="action" key={index}>
            <div className="action-row">
              <select aria-label={`${title} ${index + 1} kind`} value={kind} onChange={(e) => put(index, blank(e.target.value as Kind, tools))}>
                <option value="say">Say</option>
                <option value="tool">Call tool</option>
                <option value="set">Set variables</option>
              </select>
              {kind === "say" && (
                <input aria-label={`${title} ${index + 1} line`} placeholder="A line the agent says ({{variables}})" value={action.say ?? ""} onChange={(e) => put(index, { say: e.target.value })} />
              )}
              {kind === "tool" && (
                <>
                  <select aria-label={`${title} ${index + 1} tool`} value={action.tool ?? ""} onChange={(e) => put(index, { ...action, tool: e.target.value })}>
                    {[...new Set([...tools, action.tool ?? ""])].filter(Boolean).map((t) => <option key={t}>{t}</option>)}
                  </select>
                  <input aria-label={`${title} ${index + 1} result variable`} placeholder="result variable" value={action.result_variable ?? ""} onChange={(e) => put(index, { ...action, result_variable: e.target.value || null })} />
                </>
              )}
              <button type="button" className="ghost danger small" aria-label={`Remove ${title.toLowerCase()} ${index + 1}`} onClick={() => onChange(actions.filter((_, i) => i !== index))}>✕</button>
            </div>
            {kind === "tool" && (
              <JsonField label={`${title} ${index + 1} arguments`} rows={2} value={(action.args ?? {}) as Json} onChange={(args) => put(index, { ...action, args: args as JsonObject })} />
            )}
            {kind === "set" && (
              <JsonField label={`${title} ${index + 1} variables`} rows={2} value={(action.set ?? {}) as Json} onChange={(set) => put(index, { set: set as FlowAction["set"] })} />
            )}
            <Problems problems={problemsAt(errors, `${path}[${index}]`)} />
          </div>
        );
      })}
    </div>
  );
}
