import { label } from "../format";
import { Analysis as AnalysisData } from "../ops/client";
import "../ops/ops.css";

function verdict(success: NonNullable<AnalysisData["success"]>): { text: string; tone: string } {
  if (success.passed !== null) return success.passed ? { text: "Succeeded", tone: "good" } : { text: "Did not succeed", tone: "bad" };
  if (success.score !== null) return { text: `Score ${success.score} / 10`, tone: success.score >= 5 ? "good" : "bad" };
  return { text: "Not judged", tone: "" };
}

function value(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** The post-call analysis of `GET /calls/{id}`: summary, verdict, disposition, extraction. */
export function Analysis({ analysis }: { analysis: AnalysisData | null | undefined }) {
  if (!analysis) return null;
  const judged = analysis.success ? verdict(analysis.success) : null;
  return (
    <section className="card analysis" data-testid="analysis">
      <div className="progress-head">
        <h2>Post-call analysis</h2>
        {analysis.engine && <span className="muted small">by {analysis.engine}</span>}
      </div>
      <div className="analysis-grid">
        <div>
          <div className="muted small">Summary</div>
          <p className="summary" data-testid="analysis-summary">{analysis.summary ?? "—"}</p>
          {analysis.error && <div className="error" role="alert">{analysis.error}</div>}
        </div>
        <div className="verdicts">
          <div>
            <div className="muted small">Success</div>
            {judged ? <span className={`verdict ${judged.tone}`} data-testid="analysis-success">{judged.text}</span> : "—"}
            {analysis.success?.reason && <div className="small reason">{analysis.success.reason}</div>}
          </div>
          <div>
            <div className="muted small">Disposition</div>
            <span className="chip disposition" data-testid="analysis-disposition">{label(analysis.disposition)}</span>
          </div>
        </div>
        {analysis.extraction && (
          <div className="extraction">
            <div className="muted small">Extracted</div>
            <table className="plain" data-testid="analysis-extraction">
              <tbody>
                {Object.entries(analysis.extraction).map(([k, v]) => (
                  <tr key={k}><td className="mono">{k}</td><td className="strong">{value(v)}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </section>
  );
}
