// Agent definitions as the REST API carries them (the contracts' AgentDefinition, JSON).
// Only what the console edits is typed; everything else is kept as it came and sent back.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface FlowAction {
  say?: string | null;
  tool?: string | null;
  args?: JsonObject;
  result_variable?: string | null;
  set?: Record<string, string | number | boolean> | null;
}

export interface Transition {
  name: string;
  description: string;
  target: string;
  parameters?: JsonObject;
  context?: "keep" | "reset" | "reset_with_summary";
  summary_prompt?: string;
}

export interface FlowNode {
  id: string;
  role?: string | null;
  task?: string;
  tools?: string[] | null;
  transitions?: Transition[];
  pre_actions?: FlowAction[];
  post_actions?: FlowAction[];
  respond_immediately?: boolean;
  collect_digits?: { variable: string; next: string; [key: string]: Json } | null;
  handoff?: { agent_id: string; announce?: string | null; [key: string]: Json | undefined } | null;
  end?: boolean;
  /** Where the canvas shows the node (layout only); unset: laid out from the graph. */
  position?: { x: number; y: number } | null;
  [key: string]: unknown;
}

export interface Flow {
  id?: string;
  initial?: string | null;
  nodes: FlowNode[];
}

export interface EngineChoice {
  engine: string;
  options?: JsonObject;
  fallback?: EngineChoice[];
  [key: string]: unknown;
}

export interface VariableSpec {
  name: string;
  type?: "string" | "integer" | "number" | "boolean";
  required?: boolean;
  default?: string | number | boolean | null;
  description?: string;
}

export interface AgentDefinition {
  name: string;
  description?: string;
  language?: string;
  system_prompt: string;
  greeting?: string;
  goodbye?: string;
  llm: EngineChoice & { show_fixed_lines?: boolean };
  stt?: EngineChoice;
  tts?: EngineChoice;
  turn?: Record<string, number | boolean | null>;
  tools?: JsonObject[];
  variables?: VariableSpec[];
  flow?: Flow | null;
  [key: string]: unknown;
}

export interface AgentRecord {
  agent_id: string;
  tenant_id: string | null;
  version: number;
  current_version: number;
  template: boolean;
  archived: boolean;
  created_at: string;
  definition: AgentDefinition;
}

export interface AgentProfile {
  agent_id: string;
  name: string;
  language: string;
  stt: { engine: string };
  tts: { engine: string };
  version: number | null;
  template: boolean;
}

export interface AgentVersionInfo {
  version: number;
  created_at: string;
  digest: string;
}

/** A 422's fields: dotted paths as the API names them (``flow.nodes[2].task``). */
export type FieldErrors = Record<string, string>;

/** The problems at ``path`` or inside it. */
export function problemsAt(errors: FieldErrors, path: string): string[] {
  return Object.entries(errors)
    .filter(([field]) => field === path || field.startsWith(`${path}.`) || field.startsWith(`${path}[`))
    .map(([field, message]) => (field === path ? message : `${field.slice(path.length + 1)}: ${message}`));
}

/** The names of the agent's own tools, in order (what a node may offer). */
export function toolNames(definition: AgentDefinition): string[] {
  return (definition.tools ?? []).map((tool) => String(tool.name ?? tool.type ?? "")).filter(Boolean);
}
