// Stand-in for network and database latency of the integrations below. SIMULATED_LATENCY_MS
// replaces every default (the shutdown test makes jobs slow with it; 0 turns waiting off).
const override = process.env.SIMULATED_LATENCY_MS;

export function io(defaultMs: number): Promise<void> {
  const ms = override !== undefined && override !== '' ? Number(override) : defaultMs;
  if (!(ms > 0)) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms));
}
