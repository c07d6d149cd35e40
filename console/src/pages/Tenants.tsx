import { useEffect, useState } from "react";
import { when } from "../format";
import { problem, send, Tenant } from "../ops/client";
import { Accounts, Keys } from "./Settings";
import "../ops/ops.css";

/** The operator's view: every tenant; one picked shows its keys and provider accounts. */
export function Tenants({ picked, onPick }: { picked: string | null; onPick: (tenant: string | null) => void }) {
  const [tenants, setTenants] = useState<Tenant[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    send<Tenant[]>("GET", "/tenants").then(setTenants, (err) => setError(problem(err)));
  }, []);

  if (picked) {
    const tenant = tenants?.find((t) => t.tenant_id === picked);
    return (
      <>
        <button className="link back" onClick={() => onPick(null)}>← All tenants</button>
        <header className="page-head">
          <div>
            <h1>{tenant?.name ?? picked}</h1>
            <p className="muted">Tenant <span className="mono">{picked}</span>: its API keys and provider accounts. Its calls are seen with one of its keys.</p>
          </div>
        </header>
        <Keys tenant={picked} current="" />
        <Accounts tenant={picked} />
      </>
    );
  }
  return (
    <>
      <header className="page-head">
        <div>
          <h1>Tenants</h1>
          <p className="muted">Signed in with the operator token: every tenant on this platform.</p>
        </div>
        <div className="stats"><div className="stat"><strong data-testid="tenant-count">{tenants?.length ?? 0}</strong> tenants</div></div>
      </header>
      {error && <div className="error" role="alert">{error}</div>}
      <section className="card table-card">
        <table className="plain" data-testid="tenants">
          <thead><tr><th>Tenant</th><th>Name</th><th>State</th><th>Created</th></tr></thead>
          <tbody>
            {(tenants ?? []).map((t) => (
              <tr key={t.tenant_id} data-tenant-id={t.tenant_id} className="clickable" onClick={() => onPick(t.tenant_id)}>
                <td className="mono strong">{t.tenant_id}</td>
                <td>{t.name}</td>
                <td>{t.disabled ? <span className="badge status-ended">disabled</span> : <span className="badge status-in_progress">active</span>}</td>
                <td>{when(t.created_at ?? null)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}

/** The operator console's frame: the tenants, and the way out. */
export function OperatorConsole({ onLogOut }: { onLogOut: () => void }) {
  const [picked, setPicked] = useState<string | null>(null);
  return (
    <div className="shell">
      <aside className="sidebar">
        <div className="brand"><span className="logo">◉</span> voicebus</div>
        <nav>
          <a className="active" href="#/tenants" onClick={() => setPicked(null)}>Tenants</a>
        </nav>
        <div className="who">
          <div className="tenant" data-testid="tenant">operator</div>
          <div className="muted small">operator token</div>
          <button className="link" onClick={onLogOut}>Log out</button>
        </div>
      </aside>
      <main className="content">
        <Tenants picked={picked} onPick={setPicked} />
      </main>
    </div>
  );
}
