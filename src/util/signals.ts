/**
 * Ctrl-C (SIGINT) and a supervisor's SIGTERM ask a long run to stop: the
 * first one sets a flag the run polls (it stops within a step and writes what
 * is done); a second one of either kind gets the default behaviour and kills
 * the process at once.
 */
import { constants } from "node:os";

export type StopSignalName = "SIGINT" | "SIGTERM";
const SIGNALS: StopSignalName[] = ["SIGINT", "SIGTERM"];

export interface StopSignals {
  /** the first stop signal received, or null */
  readonly signal: StopSignalName | null;
  /** the shell's code for death by that signal: 128 + its number (SIGINT 130, SIGTERM 143) */
  exitCode(): number;
  /** stops listening (a later signal kills as usual) */
  dispose(): void;
}

export function catchStopSignals(onStop: (signal: StopSignalName) => void): StopSignals {
  let received: StopSignalName | null = null;
  const handlers = new Map<StopSignalName, () => void>();
  const dispose = () => {
    for (const [s, h] of handlers) process.off(s, h);
    handlers.clear();
  };
  for (const s of SIGNALS) {
    const h = () => {
      received = s;
      dispose(); // the next signal kills
      onStop(s);
    };
    handlers.set(s, h);
    process.on(s, h);
  }
  return {
    get signal() {
      return received;
    },
    exitCode: () => (received ? 128 + constants.signals[received] : 1),
    dispose,
  };
}
