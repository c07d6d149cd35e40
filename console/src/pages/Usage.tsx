import { useEffect, useState } from "react";
import { API } from "../api";
import { problem, send, Usage as UsageData, UsageReport } from "../ops/client";
import "../ops/ops.css";

const COLUMNS: [keyof UsageData, string][] = [
  ["calls", "Calls"],
  ["minutes", "Minutes"],
  ["stt_seconds", "STT s"],
  ["tts_characters", "TTS chars"],
  ["llm_tokens_in", "LLM in"],
  ["llm_tokens_out", "LLM out"],
  ["tool_calls", "Tool calls"],
];

function number(n: number): string {
  return n.toLocaleString(undefined, { maximumFractionDigits: 2 });
}

/** Usage per UTC day over the last 30 days, with the CSV export. */
export function Usage() {
  const [report, setReport] = useState<UsageReport | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    send<UsageReport>("GET", "/usage").then(setReport, (err) => setError(problem(err)));
  }, []);

  return (
    <section className="card" data-testid="usage">
      <div className="progress-head">
        <h2>Usage</h2>
        <a className="button ghost" href={`${API}/usage?format=csv`} download>Export CSV</a>
      </div>
      {report && <p className="muted">UTC days {report.from_day} to {report.to_day}.</p>}
      {error && <div className="error" role="alert">{error}</div>}
      <table className="plain usage-table">
        <thead>
          <tr><th>Day</th>{COLUMNS.map(([, title]) => <th key={title} className="num">{title}</th>)}</tr>
        </thead>
        <tbody>
          {(report?.days ?? []).map((d) => (
            <tr key={d.day} data-day={d.day}>
              <td className="mono">{d.day}</td>
              {COLUMNS.map(([k, title]) => <td key={title} className="num">{number(d[k].total)}</td>)}
            </tr>
          ))}
          {report?.days.length === 0 && <tr><td colSpan={COLUMNS.length + 1} className="empty">No usage in this range.</td></tr>}
        </tbody>
        {report && report.days.length > 0 && (
          <tfoot>
            <tr data-testid="usage-totals">
              <td className="strong">Total</td>
              {COLUMNS.map(([k, title]) => <td key={title} className="num strong">{number(report.totals[k].total)}</td>)}
            </tr>
          </tfoot>
        )}
      </table>
    </section>
  );
}
