import { useEffect, useRef, useState } from "react";
import { API } from "../api";
import { Progress } from "./client";

// Campaign facts on the tenant's live feed: counts every few seconds while a campaign runs
// (its call slot holds the campaign id), and each attempt's outcome.
const TYPES = ["campaign.progress.v1", "attempt.outcome.v1"];

/** Whether the feed is open; `onProgress` gets the campaign's counts, `onOutcome` a nudge. */
export function useCampaignFeed(campaignId: string, onProgress: (progress: Progress) => void, onOutcome: () => void): boolean {
  const [live, setLive] = useState(false);
  const handlers = useRef({ onProgress, onOutcome });
  handlers.current = { onProgress, onOutcome };

  useEffect(() => {
    const source = new EventSource(`${API}/events/stream`, { withCredentials: true });
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(false);
    const listener = (message: MessageEvent<string>) => {
      try {
        const event = JSON.parse(message.data) as { type: string; data: Record<string, unknown> };
        if (event.data.campaign_id !== campaignId) return;
        if (event.type === "campaign.progress.v1") handlers.current.onProgress(event.data as unknown as Progress);
        else handlers.current.onOutcome();
      } catch {
        /* a malformed message is skipped */
      }
    };
    for (const type of TYPES) source.addEventListener(type, listener);
    // Fallen behind: the page's polling reloads the counts; reopen the stream.
    source.addEventListener("overflow", () => {
      source.close();
      setLive(false);
    });
    return () => source.close();
  }, [campaignId]);
  return live;
}
