// The console's only server: the public REST API (/api/v1), with the session cookie.
// Writes repeat the session's CSRF token (readable cookie vb_csrf) in X-CSRF-Token.

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)vb_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

let onUnauthorized: () => void = () => {};

export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const method = (init.method ?? "GET").toUpperCase();
  const headers = new Headers(init.headers);
  if (init.body !== undefined) headers.set("Content-Type", "application/json");
  if (method !== "GET" && method !== "HEAD") headers.set("X-CSRF-Token", csrfToken());
  const response = await fetch(API + path, { ...init, method, headers, credentials: "same-origin" });
  if (response.status === 204) return undefined as T;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body?.error ?? {};
    if (response.status === 401 && path !== "/session") onUnauthorized();
    throw new ApiError(response.status, error.code ?? "error", error.message ?? response.statusText);
  }
  return body as T;
}

export interface Session {
  tenant_id: string;
  key_id: string;
  scopes: string[];
  expires_at: string;
  csrf_token: string;
}

export interface Call {
  call_id: string;
  status: string;
  direction: string | null;
  provider: string | null;
  agent_id: string | null;
  from_number: string | null;
  to_number: string | null;
  initiated_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  duration_s: number | null;
  ended_reason: string | null;
}

export interface CallPage {
  calls: Call[];
  next_before: string | null;
}

export interface StoredEvent {
  id: string;
  type: string;
  source: string;
  time: string;
  data: Record<string, unknown>;
}

/** An event as the live feed carries it: the CloudEvents envelope. */
export interface LiveEvent extends StoredEvent {
  tenant_id: string;
  call_id: string;
}

export interface RecordingMeta {
  bytes: number;
  duration_s: number;
  channels: number;
  sample_rate: number;
  media_type: string;
}

export interface ApiKey {
  key_id: string;
  tenant_id: string;
  name: string;
  scopes: string[];
  rate_limit_per_minute: number;
  created_at: string;
  revoked_at: string | null;
}

export interface Account {
  provider: string;
  secrets_set: string[];
  fields: Record<string, string>;
  updated_at: string | null;
}

export const SCOPES = [
  "calls:read",
  "calls:write",
  "agents:read",
  "agents:write",
  "recordings:read",
  "campaigns:read",
  "campaigns:write",
  "admin",
];
