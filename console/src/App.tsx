import { useCallback, useEffect, useState } from "react";
import { api, Session, whenUnauthorized } from "./api";
import { AgentEditor } from "./pages/AgentEditor";
import { Agents } from "./pages/Agents";
import { CallDetail } from "./pages/CallDetail";
import { CampaignDetail } from "./pages/CampaignDetail";
import { Campaigns } from "./pages/Campaigns";
import { OperatorConsole } from "./pages/Tenants";
import { Calls } from "./pages/Calls";
import { Login } from "./pages/Login";
import { Settings } from "./pages/Settings";
import { useRoute } from "./route";

export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const route = useRoute();

  useEffect(() => {
    whenUnauthorized(() => setSession(null));
    api<Session>("/session").then(setSession, () => setSession(null));
  }, []);

  const logOut = useCallback(async () => {
    await api("/session", { method: "DELETE" }).catch(() => undefined);
    setSession(null);
  }, []);

  if (session === undefined) return <div className="splash">Loading…</div>;
  if (session === null) return <Login onLogin={setSession} />;
  if (session.operator) return <OperatorConsole onLogOut={logOut} />;
  const campaigns = route.page === "campaigns" || route.page === "campaign";

  return (
    <div className="shell">
      <aside className="sidebar">
        <div className="brand">
          <span className="logo">◉</span> voicebus
        </div>
        <nav>
          <a className={route.page === "calls" || route.page === "call" ? "active" : ""} href="#/calls">
            Calls
          </a>
          <a className={campaigns ? "active" : ""} href="#/campaigns">
            Campaigns
          </a>
          <a className={route.page === "agents" || route.page === "agent" ? "active" : ""} href="#/agents">
            Agents
          </a>
          <a className={route.page === "settings" ? "active" : ""} href="#/settings">
            Settings
          </a>
        </nav>
        <div className="who">
          <div className="tenant" data-testid="tenant">{session.tenant_id}</div>
          <div className="muted small">key {session.key_id}</div>
          <button className="link" onClick={logOut}>
            Log out
          </button>
        </div>
      </aside>
      <main className="content">
        {route.page === "calls" && <Calls />}
        {route.page === "call" && <CallDetail callId={route.callId} />}
        {route.page === "settings" && <Settings session={session} />}
        {route.page === "campaigns" && <Campaigns />}
        {route.page === "campaign" && <CampaignDetail campaignId={route.campaignId} />}
        {route.page === "agents" && <Agents />}
        {route.page === "agent" && (
          <AgentEditor key={route.agentId} agentId={route.agentId} tab={route.tab} />
        )}
      </main>
    </div>
  );
}
