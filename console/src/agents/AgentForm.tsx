import { ReactNode } from "react";
import { JsonField, Problems } from "./JsonField";
import { AgentDefinition, EngineChoice, FieldErrors, Json, JsonObject, VariableSpec, problemsAt } from "./types";

interface FormProps {
  definition: AgentDefinition;
  errors: FieldErrors;
  onChange: (definition: AgentDefinition) => void;
}

function Field({ label, path, errors, children }: { label: string; path: string; errors: FieldErrors; children: ReactNode }) {
  const problems = problemsAt(errors, path);
  return (
    <label className={`field${problems.length ? " has-error" : ""}`} data-field={path}>
      <span className="field-label">{label}</span>
      {children}
      <Problems problems={problems} />
    </label>
  );
}

/** The agent's settings: identity, prompt and lines, engines, turn-taking, tools, variables. */
export function AgentForm({ definition, errors, onChange }: FormProps) {
  const set = (patch: Partial<AgentDefinition>) => onChange({ ...definition, ...patch });
  const text = (key: "name" | "description" | "language" | "system_prompt" | "greeting" | "goodbye") => ({
    value: (definition[key] as string | undefined) ?? "",
    onChange: (e: { target: { value: string } }) => set({ [key]: e.target.value }),
  });

  return (
    <div className="agent-form">
      <section className="card form-grid">
        <h2>Agent</h2>
        <Field label="Name" path="name" errors={errors}><input aria-label="Name" {...text("name")} /></Field>
        <Field label="Language" path="language" errors={errors}><input aria-label="Language" {...text("language")} /></Field>
        <Field label="Description" path="description" errors={errors}><input aria-label="Description" {...text("description")} /></Field>
      </section>
      <section className="card">
        <h2>Conversation</h2>
        <Field label="System prompt" path="system_prompt" errors={errors}>
          <textarea aria-label="System prompt" rows={6} {...text("system_prompt")} />
        </Field>
        <div className="two">
          <Field label="Greeting (said first; empty: wait for the caller)" path="greeting" errors={errors}>
            <input aria-label="Greeting" {...text("greeting")} />
          </Field>
          <Field label="Goodbye" path="goodbye" errors={errors}><input aria-label="Goodbye" {...text("goodbye")} /></Field>
        </div>
      </section>
      <section className="card">
        <h2>Engines</h2>
        <div className="engines">
          <EngineEditor role="LLM" path="llm" choice={definition.llm} errors={errors} onChange={(llm) => set({ llm })} />
          <EngineEditor role="STT" path="stt" choice={definition.stt ?? { engine: "whisper-local" }} errors={errors} onChange={(stt) => set({ stt })} />
          <EngineEditor role="TTS" path="tts" choice={definition.tts ?? { engine: "hibari" }} errors={errors} onChange={(tts) => set({ tts })} />
        </div>
      </section>
      <TurnEditor turn={definition.turn ?? {}} errors={errors} onChange={(turn) => set({ turn })} />
      <section className="card">
        <h2>Tools</h2>
        <div className="chips-row">
          {(definition.tools ?? []).map((tool, i) => (
            <span className="chip" key={i}>{String(tool.name ?? tool.type)} <span className="muted">· {String(tool.type)}</span></span>
          ))}
          {!(definition.tools ?? []).length && <span className="muted small">No tools: the agent only talks.</span>}
        </div>
        <JsonField label="Tools (JSON)" rows={6} value={(definition.tools ?? []) as Json} onChange={(tools) => set({ tools: tools as JsonObject[] })} problems={problemsAt(errors, "tools")} />
      </section>
      <VariablesEditor variables={definition.variables ?? []} errors={errors} onChange={(variables) => set({ variables })} />
    </div>
  );
}

function EngineEditor({
  role, path, choice, errors, onChange,
}: { role: string; path: string; choice: EngineChoice; errors: FieldErrors; onChange: (choice: EngineChoice) => void }) {
  const fallbacks = choice.fallback ?? [];
  return (
    <div className="engine" data-role={role}>
      <div className="engine-role">{role}</div>
      <Field label="Engine" path={`${path}.engine`} errors={errors}>
        <input aria-label={`${role} engine`} value={choice.engine} onChange={(e) => onChange({ ...choice, engine: e.target.value })} />
      </Field>
      <JsonField label={`${role} options`} rows={3} value={(choice.options ?? {}) as Json} onChange={(options) => onChange({ ...choice, options: options as JsonObject })} problems={problemsAt(errors, `${path}.options`)} />
      <Field label="Fallbacks, in order (comma-separated)" path={`${path}.fallback`} errors={errors}>
        <input
          aria-label={`${role} fallbacks`}
          value={fallbacks.map((f) => f.engine).join(", ")}
          onChange={(e) => {
            const names = e.target.value.split(",").map((s) => s.trim()).filter(Boolean);
            const byName = new Map(fallbacks.map((f) => [f.engine, f]));
            onChange({ ...choice, fallback: names.map((engine) => byName.get(engine) ?? { engine }) });
          }}
        />
      </Field>
    </div>
  );
}

function TurnEditor({
  turn, errors, onChange,
}: { turn: Record<string, number | boolean | null>; errors: FieldErrors; onChange: (turn: Record<string, number | boolean | null>) => void }) {
  const num = (key: string, label: string, fallback: number) => (
    <Field label={label} path={`turn.${key}`} errors={errors}>
      <input aria-label={label} type="number" value={(turn[key] as number | undefined) ?? fallback} onChange={(e) => onChange({ ...turn, [key]: Number(e.target.value) })} />
    </Field>
  );
  const smart = turn.smart_turn === true ? "on" : turn.smart_turn === false ? "off" : "auto";
  return (
    <section className="card">
      <h2>Turn-taking</h2>
      <div className="form-row">
        {num("vad_stop_ms", "Silence that ends speech (ms)", 300)}
        {num("min_speech_ms", "Shortest speech (ms)", 200)}
        {num("interruption_min_words", "Words that interrupt", 1)}
        <Field label="Smart turn" path="turn.smart_turn" errors={errors}>
          <select aria-label="Smart turn" value={smart} onChange={(e) => onChange({ ...turn, smart_turn: e.target.value === "auto" ? null : e.target.value === "on" })}>
            <option value="auto">auto (local STT)</option>
            <option value="on">on</option>
            <option value="off">off</option>
          </select>
        </Field>
        <label className="check">
          <input type="checkbox" checked={(turn.allow_interruptions as boolean | undefined) ?? true} onChange={(e) => onChange({ ...turn, allow_interruptions: e.target.checked })} />
          Caller may interrupt
        </label>
      </div>
    </section>
  );
}

function VariablesEditor({
  variables, errors, onChange,
}: { variables: VariableSpec[]; errors: FieldErrors; onChange: (variables: VariableSpec[]) => void }) {
  const put = (i: number, patch: Partial<VariableSpec>) => onChange(variables.map((v, j) => (j === i ? { ...v, ...patch } : v)));
  return (
    <section className="card" data-testid="variables">
      <div className="section-head">
        <h2>Variables</h2>
        <button type="button" className="ghost" onClick={() => onChange([...variables, { name: "", type: "string" }])}>+ Add variable</button>
      </div>
      <table className="plain">
        <thead><tr><th>Name</th><th>Type</th><th>Required</th><th>Default</th><th>Description</th><th /></tr></thead>
        <tbody>
          {variables.map((v, i) => (
            <tr key={i}>
              <td>
                <input aria-label={`Variable ${i + 1} name`} className="mono" value={v.name} onChange={(e) => put(i, { name: e.target.value })} />
                <Problems problems={problemsAt(errors, `variables[${i}]`)} />
              </td>
              <td>
                <select aria-label={`Variable ${i + 1} type`} value={v.type ?? "string"} onChange={(e) => put(i, { type: e.target.value as VariableSpec["type"] })}>
                  {["string", "integer", "number", "boolean"].map((t) => <option key={t}>{t}</option>)}
                </select>
              </td>
              <td><input type="checkbox" aria-label={`Variable ${i + 1} required`} checked={v.required ?? false} onChange={(e) => put(i, { required: e.target.checked, default: e.target.checked ? null : v.default })} /></td>
              <td><input aria-label={`Variable ${i + 1} default`} value={v.default === null || v.default === undefined ? "" : String(v.default)} disabled={v.required} onChange={(e) => put(i, { default: e.target.value === "" ? null : e.target.value })} /></td>
              <td><input aria-label={`Variable ${i + 1} description`} value={v.description ?? ""} onChange={(e) => put(i, { description: e.target.value })} /></td>
              <td><button type="button" className="ghost danger small" aria-label={`Remove variable ${i + 1}`} onClick={() => onChange(variables.filter((_, j) => j !== i))}>✕</button></td>
            </tr>
          ))}
          {!variables.length && <tr><td colSpan={6} className="muted small">No variables. Prompts and lines may still use the call's context.</td></tr>}
        </tbody>
      </table>
    </section>
  );
}
