import { diffLines } from "diff";
import { useCallback, useEffect, useMemo, useState } from "react";
import { api, ApiError } from "../api";
import { when } from "../format";
import { AgentRecord, AgentVersionInfo } from "./types";

function pretty(record: AgentRecord | undefined): string {
  return record ? `${JSON.stringify(record.definition, null, 2)}\n` : "";
}

/** The agent's versions, a diff between two of them, and "make live". */
export function Versions({
  agentId,
  current,
  onLive,
}: {
  agentId: string;
  current: number;
  onLive: (record: AgentRecord) => void;
}) {
  const base = `/agents/${encodeURIComponent(agentId)}`;
  const [versions, setVersions] = useState<AgentVersionInfo[]>([]);
  const [left, setLeft] = useState<number | null>(null);
  const [right, setRight] = useState<number | null>(null);
  const [records, setRecords] = useState<Record<number, AgentRecord>>({});
  const [error, setError] = useState("");

  useEffect(() => {
    api<AgentVersionInfo[]>(`${base}/versions`).then((list) => {
      setVersions(list);
      setRight((r) => r ?? list[0]?.version ?? null);
      setLeft((l) => l ?? list[1]?.version ?? list[0]?.version ?? null);
    }, (err) => setError(err instanceof ApiError ? err.message : "The edge did not answer."));
  }, [base, current]);

  const load = useCallback(
    (version: number | null) => {
      if (version === null || records[version]) return;
      api<AgentRecord>(`${base}/versions/${version}`).then(
        (record) => setRecords((all) => ({ ...all, [version]: record })),
        (err) => setError(err instanceof ApiError ? err.message : "The edge did not answer."),
      );
    },
    [base, records],
  );
  useEffect(() => load(left), [left, load]);
  useEffect(() => load(right), [right, load]);

  const parts = useMemo(() => {
    if (left === null || right === null || !records[left] || !records[right]) return null;
    return diffLines(pretty(records[left]), pretty(records[right]));
  }, [left, right, records]);
  const added = parts?.filter((p) => p.added).reduce((n, p) => n + (p.count ?? 0), 0) ?? 0;
  const removed = parts?.filter((p) => p.removed).reduce((n, p) => n + (p.count ?? 0), 0) ?? 0;

  async function makeLive(version: number) {
    setError("");
    try {
      const record = await api<AgentRecord>(`${base}/versions/${version}/live`, { method: "POST" });
      onLive(record);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "The edge did not answer.");
    }
  }

  const digestOf = new Map(versions.map((v) => [v.version, v.digest]));
  const liveDigest = digestOf.get(current);
  return (
    <div className="versions">
      {error && <div className="error" role="alert">{error}</div>}
      <section className="card table-card">
        <table data-testid="versions">
          <thead><tr><th>Version</th><th>Saved</th><th>Definition</th><th>Compare</th><th /></tr></thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.version} data-version={v.version} className={v.version === current ? "live-row" : ""}>
                <td className="strong">
                  v{v.version}
                  {v.version === current && <span className="badge status-live">live</span>}
                  {v.version !== current && v.digest === liveDigest && <span className="tag">same as live</span>}
                </td>
                <td>{when(v.created_at)}</td>
                <td className="mono muted">{v.digest.slice(0, 12)}</td>
                <td>
                  <label className="check"><input type="radio" name="left" aria-label={`Compare from v${v.version}`} checked={left === v.version} onChange={() => setLeft(v.version)} /> from</label>
                  <label className="check"><input type="radio" name="right" aria-label={`Compare to v${v.version}`} checked={right === v.version} onChange={() => setRight(v.version)} /> to</label>
                </td>
                <td className="right">
                  {v.version !== current && (
                    <button type="button" className="ghost" aria-label={`Make v${v.version} live`} onClick={() => makeLive(v.version)}>Make live</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section className="card">
        <div className="section-head">
          <h2>Changes v{left ?? "?"} → v{right ?? "?"}</h2>
          <span className="small"><span className="plus">+{added}</span> <span className="minus">−{removed}</span></span>
        </div>
        <pre className="diff mono" data-testid="diff">
          {parts === null && <span className="muted">Loading…</span>}
          {parts !== null && added + removed === 0 && <span className="muted">No differences.</span>}
          {parts?.map((part, i) => {
            const kind = part.added ? "add" : part.removed ? "del" : "same";
            if (kind === "same") {
              const lines = part.value.replace(/\n$/, "").split("\n");
              const shown = lines.length > 6 ? [...lines.slice(0, 2), `… ${lines.length - 4} unchanged lines`, ...lines.slice(-2)] : lines;
              return <span key={i} className="diff-same">{shown.map((l) => `  ${l}\n`).join("")}</span>;
            }
            const mark = kind === "add" ? "+ " : "- ";
            return (
              <span key={i} className={`diff-${kind}`}>
                {part.value.replace(/\n$/, "").split("\n").map((l) => `${mark}${l}\n`).join("")}
              </span>
            );
          })}
        </pre>
      </section>
    </div>
  );
}
