import { FormEvent, useState } from "react";
import { api, ApiError, Session } from "../api";

export function Login({ onLogin }: { onLogin: (session: Session) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      onLogin(await api<Session>("/session", { method: "POST", body: JSON.stringify({ api_key: key }) }));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "The edge did not answer.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="login">
      <form className="login-card" onSubmit={submit}>
        <div className="brand big">
          <span className="logo">◉</span> voicebus
        </div>
        <h1>Sign in to the console</h1>
        <p className="muted">Use one of your tenant's API keys. It is kept by the server, not in this page.</p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="api_key"
          type="password"
          autoComplete="off"
          placeholder="vb_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          autoFocus
        />
        {error && <div className="error" role="alert">{error}</div>}
        <button className="primary" type="submit" disabled={busy || !key}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}
