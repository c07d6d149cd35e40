import { useEffect, useState } from "react";

// Routes live in the URL's fragment (#/calls/<id>): the edge serves one page.
export type Route =
  | { page: "calls" }
  | { page: "call"; callId: string }
  | { page: "settings" }
  | { page: "campaigns" }
  | { page: "campaign"; campaignId: string }
  | { page: "agents" }
  | { page: "agent"; agentId: string; tab: string };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "calls" && parts[1]) return { page: "call", callId: decodeURIComponent(parts[1]) };
  if (parts[0] === "settings") return { page: "settings" };
  if (parts[0] === "campaigns" && parts[1]) return { page: "campaign", campaignId: decodeURIComponent(parts[1]) };
  if (parts[0] === "campaigns") return { page: "campaigns" };
  if (parts[0] === "agents" && parts[1]) {
    return { page: "agent", agentId: decodeURIComponent(parts[1]), tab: parts[2] ?? "settings" };
  }
  if (parts[0] === "agents") return { page: "agents" };
  return { page: "calls" };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return route;
}

export function go(path: string): void {
  window.location.hash = path;
}
