import { FormEvent, useCallback, useEffect, useState } from "react";
import { Account, api, ApiError, ApiKey, SCOPES, Session } from "../api";
import { when } from "../format";
import { Usage } from "./Usage";
import { Webhooks } from "./Webhooks";

const PROVIDERS = ["twilio", "plivo", "exotel", "vobiz"];

function message(err: unknown): string {
  return err instanceof ApiError ? err.message : "The edge did not answer.";
}

export function Settings({ session }: { session: Session }) {
  const admin = session.scopes.includes("admin");
  return (
    <>
      <header className="page-head">
        <div>
          <h1>Settings</h1>
          <p className="muted">Tenant <strong>{session.tenant_id}</strong>: API keys, provider accounts, webhooks and usage.</p>
        </div>
      </header>
      {admin ? (
        <>
          <Keys tenant={session.tenant_id} current={session.key_id} />
          <Accounts tenant={session.tenant_id} />
          <Webhooks />
          <Usage />
        </>
      ) : (
        <div className="card muted">Managing keys and provider accounts needs a key with the admin scope.</div>
      )}
    </>
  );
}

export function Keys({ tenant, current }: { tenant: string; current: string }) {
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["calls:read"]);
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState("");

  const load = useCallback(() => {
    api<ApiKey[]>(`/tenants/${tenant}/keys`).then(setKeys, (err) => setError(message(err)));
  }, [tenant]);
  useEffect(load, [load]);

  async function create(event: FormEvent) {
    event.preventDefault();
    setError("");
    try {
      const key = await api<ApiKey & { token: string }>(`/tenants/${tenant}/keys`, {
        method: "POST",
        body: JSON.stringify({ name, scopes }),
      });
      setCreated(key.token);
      setName("");
      load();
    } catch (err) {
      setError(message(err));
    }
  }

  async function revoke(keyId: string) {
    if (!window.confirm(`Revoke key ${keyId}? Anything using it stops working at once.`)) return;
    try {
      await api(`/tenants/${tenant}/keys/${keyId}`, { method: "DELETE" });
      load();
    } catch (err) {
      setError(message(err));
    }
  }

  return (
    <section className="card">
      <h2>API keys</h2>
      {created && (
        <div className="notice" data-testid="new-key">
          <div className="strong">Copy the new key now: it is not shown again.</div>
          <code className="secret">{created}</code>
          <button className="ghost" onClick={() => setCreated(null)}>Done</button>
        </div>
      )}
      {error && <div className="error" role="alert">{error}</div>}
      <table className="plain" data-testid="keys">
        <thead>
          <tr><th>Name</th><th>Key id</th><th>Scopes</th><th>Created</th><th>State</th><th /></tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.key_id} data-key-id={k.key_id}>
              <td className="strong">{k.name}</td>
              <td className="mono">{k.key_id}{k.key_id === current && <span className="tag">this session</span>}</td>
              <td>{k.scopes.map((s) => <span key={s} className="chip">{s}</span>)}</td>
              <td>{when(k.created_at)}</td>
              <td>{k.revoked_at ? <span className="badge status-ended">revoked</span> : <span className="badge status-in_progress">active</span>}</td>
              <td>{!k.revoked_at && <button className="danger ghost" onClick={() => revoke(k.key_id)}>Revoke</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="inline-form" onSubmit={create}>
        <input aria-label="Key name" placeholder="New key name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={128} />
        <div className="scopes">
          {SCOPES.map((s) => (
            <label key={s} className="check">
              <input type="checkbox" checked={scopes.includes(s)} onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))} />
              {s}
            </label>
          ))}
        </div>
        <button className="primary" type="submit" disabled={!name || scopes.length === 0}>Create key</button>
      </form>
    </section>
  );
}

export function Accounts({ tenant }: { tenant: string }) {
  const [accounts, setAccounts] = useState<Record<string, Account | null>>({});
  const [provider, setProvider] = useState(PROVIDERS[0]);
  const [secretName, setSecretName] = useState("auth_token");
  const [secretValue, setSecretValue] = useState("");
  const [fieldName, setFieldName] = useState("account_sid");
  const [fieldValue, setFieldValue] = useState("");
  const [error, setError] = useState("");
  const [saved, setSaved] = useState("");

  const load = useCallback(() => {
    for (const p of PROVIDERS) {
      api<Account>(`/tenants/${tenant}/accounts/${p}`).then(
        (a) => setAccounts((all) => ({ ...all, [p]: a })),
        () => setAccounts((all) => ({ ...all, [p]: null })),
      );
    }
  }, [tenant]);
  useEffect(load, [load]);

  async function save(event: FormEvent) {
    event.preventDefault();
    setError("");
    const secrets = secretValue ? { [secretName]: secretValue } : {};
    const fields = fieldValue ? { [fieldName]: fieldValue } : {};
    try {
      await api(`/tenants/${tenant}/accounts/${provider}`, { method: "PUT", body: JSON.stringify({ secrets, fields }) });
      setSecretValue("");
      setSaved(`Saved the ${provider} account.`);
      load();
    } catch (err) {
      setError(message(err));
    }
  }

  return (
    <section className="card">
      <h2>Provider accounts</h2>
      <p className="muted">Secrets are stored encrypted and never shown again; only their names are listed.</p>
      <table className="plain" data-testid="accounts">
        <thead>
          <tr><th>Provider</th><th>Secrets set</th><th>Settings</th><th>Updated</th></tr>
        </thead>
        <tbody>
          {PROVIDERS.map((p) => {
            const a = accounts[p];
            return (
              <tr key={p}>
                <td className="strong">{p}</td>
                <td>{a ? a.secrets_set.map((s) => <span key={s} className="chip">{s} ••••</span>) : <span className="muted">not set</span>}</td>
                <td className="mono">{a ? Object.entries(a.fields).map(([k, v]) => `${k}=${v}`).join(", ") || "—" : "—"}</td>
                <td>{a ? when(a.updated_at) : "—"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {error && <div className="error" role="alert">{error}</div>}
      {saved && <div className="ok">{saved}</div>}
      <form className="inline-form" onSubmit={save}>
        <select aria-label="Provider" value={provider} onChange={(e) => setProvider(e.target.value)}>
          {PROVIDERS.map((p) => <option key={p}>{p}</option>)}
        </select>
        <input aria-label="Secret name" value={secretName} onChange={(e) => setSecretName(e.target.value)} />
        <input aria-label="Secret value" type="password" autoComplete="new-password" placeholder="secret (write-only)" value={secretValue} onChange={(e) => setSecretValue(e.target.value)} />
        <input aria-label="Setting name" value={fieldName} onChange={(e) => setFieldName(e.target.value)} />
        <input aria-label="Setting value" placeholder="value" value={fieldValue} onChange={(e) => setFieldValue(e.target.value)} />
        <button className="primary" type="submit">Save account</button>
      </form>
    </section>
  );
}
