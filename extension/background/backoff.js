export const RECONNECT_INITIAL_MS = 1_000;
export const RECONNECT_MAX_MS = 60_000;
const JITTER = 0.2;

/**
 * Delay before reconnect attempt number `attempt` (0 for the first retry):
 * doubling from one second up to a minute, with jitter so that a server
 * restart is not met by every agent at the same instant.
 */
export function reconnectDelay(attempt, random = Math.random) {
  const n = Number.isInteger(attempt) && attempt > 0 ? attempt : 0;
  const base = Math.min(RECONNECT_MAX_MS, RECONNECT_INITIAL_MS * 2 ** Math.min(n, 30));
  const spread = base * JITTER * (2 * random() - 1);
  return Math.round(Math.min(RECONNECT_MAX_MS, Math.max(RECONNECT_INITIAL_MS, base + spread)));
}
