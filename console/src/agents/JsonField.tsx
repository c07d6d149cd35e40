import { useEffect, useState } from "react";
import { Json } from "./types";

/** A JSON value edited as text: changes reach ``onChange`` only while the text parses. */
export function JsonField({
  label,
  value,
  onChange,
  rows = 4,
  problems = [],
}: {
  label: string;
  value: Json | undefined;
  onChange: (value: Json) => void;
  rows?: number;
  problems?: string[];
}) {
  const shown = value === undefined ? "" : JSON.stringify(value, null, 2);
  const [text, setText] = useState(shown);
  const [bad, setBad] = useState("");
  useEffect(() => {
    setText((current) => {
      try {
        return JSON.stringify(JSON.parse(current)) === JSON.stringify(value) ? current : shown;
      } catch {
        return current;
      }
    });
  }, [value, shown]);

  function edit(next: string) {
    setText(next);
    try {
      onChange(JSON.parse(next) as Json);
      setBad("");
    } catch (err) {
      setBad(err instanceof Error ? `Not JSON: ${err.message}` : "Not JSON");
    }
  }

  return (
    <label className="field">
      <span className="field-label">{label}</span>
      <textarea className="mono" aria-label={label} rows={rows} value={text} onChange={(e) => edit(e.target.value)} spellCheck={false} />
      {bad && <span className="field-error">{bad}</span>}
      {problems.map((p) => (
        <span key={p} className="field-error" role="alert">{p}</span>
      ))}
    </label>
  );
}

/** The API's problems at one field, next to it. */
export function Problems({ problems }: { problems: string[] }) {
  return (
    <>
      {problems.map((p) => (
        <span key={p} className="field-error" role="alert">{p}</span>
      ))}
    </>
  );
}
