// REST calls of the operations pages (campaigns, webhooks, usage, tenants): the session
// cookie, the CSRF header on writes, and the API's field problems kept for the forms.
import { API, ApiError, csrfToken } from "../api";

export interface FieldProblem {
  field: string;
  message: string;
}

/** An API error with the fields a 422 names (paths without the leading "body."). */
export class FieldsError extends ApiError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly fields: FieldProblem[],
  ) {
    super(status, code, message);
  }

  /** The problems of `field` and of anything under it (`windows` covers `windows.mon.0`). */
  about(field: string): string {
    const messages = this.fields
      .filter((p) => p.field === field || p.field.startsWith(`${field}.`))
      .map((p) => p.message);
    return [...new Set(messages)].join("; ");
  }
}

function failure(status: number, body: unknown, fallback: string): FieldsError {
  const error = (body as { error?: { code?: string; message?: string; fields?: FieldProblem[] } })?.error ?? {};
  const fields = (error.fields ?? []).map((p) => ({ ...p, field: p.field.replace(/^body\./, "") }));
  return new FieldsError(status, error.code ?? "error", error.message ?? fallback, fields);
}

export async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return undefined as T;
  const parsed = await response.json().catch(() => ({}));
  if (!response.ok) throw failure(response.status, parsed, response.statusText);
  return parsed as T;
}

/** POST a file with upload progress (fetch reports none): `onProgress` gets 0..1. */
export function upload<T>(path: string, file: File, onProgress: (fraction: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API + path);
    xhr.setRequestHeader("Content-Type", file.type || "text/csv");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let parsed: unknown = {};
      try {
        parsed = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON: the status speaks */
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(parsed as T);
      } else reject(failure(xhr.status, parsed, xhr.statusText));
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "The edge did not answer."));
    xhr.send(file);
  });
}

export function problem(err: unknown): string {
  return err instanceof ApiError ? err.message : "The edge did not answer.";
}

// -- shapes of the REST API --------------------------------------------------

export interface TimeRange {
  start: string;
  end: string;
}

export interface RetryRule {
  max_attempts: number;
  delay_s: number;
}

export interface CampaignSpec {
  name: string;
  agent_id: string;
  caller_ids: string[];
  provider: string | null;
  mode: "conversation" | "notification";
  message: string | null;
  windows: Record<string, TimeRange[]>;
  default_time_zone: string;
  concurrency: number;
  pacing_cps: number;
  retry: {
    busy: RetryRule | null;
    no_answer: RetryRule | null;
    failed: RetryRule | null;
    machine: RetryRule | null;
    max_attempts: number;
  };
  ring_timeout_s: number;
}

export interface Campaign {
  campaign_id: string;
  tenant_id: string;
  status: string;
  spec: CampaignSpec;
  created_at: string;
  updated_at: string;
}

export interface Progress {
  campaign_id: string;
  status: string;
  contacts: number;
  by_state: Record<string, number>;
  by_outcome: Record<string, number>;
  in_flight: number;
  dialed: number;
}

export interface UploadReport {
  upload_id: string;
  rows: number;
  loaded: number;
  merged: number;
  dnc: number;
  rejected: number;
  errors: { line: number; reason: string }[];
}

export interface DncEntry {
  phone: string;
  reason: string | null;
  added_at: string;
}

export interface Webhook {
  webhook_id: string;
  url: string;
  event_types: string[];
  description: string;
  enabled: boolean;
  created_at: string;
  secret?: string | null;
}

export interface Delivery {
  delivery_id: string;
  event_id: string;
  event_type: string;
  call_id: string;
  status: "pending" | "delivered" | "dead";
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface Breakdown {
  total: number;
  by: Record<string, number>;
}

export interface Usage {
  calls: Breakdown;
  minutes: Breakdown;
  stt_seconds: Breakdown;
  tts_characters: Breakdown;
  llm_tokens_in: Breakdown;
  llm_tokens_out: Breakdown;
  tool_calls: Breakdown;
}

export interface UsageReport {
  tenant_id: string;
  from_day: string;
  to_day: string;
  days: (Usage & { day: string })[];
  totals: Usage;
}

export interface Tenant {
  tenant_id: string;
  name: string;
  disabled?: boolean;
  created_at?: string;
}

export interface Analysis {
  ok: boolean;
  summary: string | null;
  extraction: Record<string, unknown> | null;
  success: { passed: boolean | null; score: number | null; reason: string } | null;
  disposition: string | null;
  error: string | null;
  engine: string | null;
}
