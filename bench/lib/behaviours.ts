/**
 * The soak's mix of run behaviours (demo.work inputs), and what each may end
 * as when no fault hit it. Slow behaviours (death, hang, long) come in short
 * bursts: the local queue dispatches one batch at a time and a batch lasts as
 * long as its slowest attempt, so spreading them would stall every batch.
 */
export type Behaviour = "success" | "long" | "failure" | "partial" | "retry" | "retry_exhausted" | "hang" | "hung_sibling" | "death";

export interface Planned {
  index: number;
  behaviour: Behaviour;
  input: Record<string, number>;
  /** Also deliver a second copy of the run's message. */
  duplicate: "none" | "immediate" | "delayed";
}

export const INPUTS: Record<Behaviour, Record<string, number>> = {
  success: { steps: 2, stepMs: 20 },
  // Heartbeats twice, then succeeds: a run the kills can catch mid-attempt.
  long: { steps: 5, stepMs: 500 },
  failure: { steps: 3, stepMs: 10, failAtStep: 2 },
  partial: { steps: 3, stepMs: 10, partialAtStep: 2 },
  // Throws (retryable) on attempt 1, succeeds on attempt 2.
  retry: { steps: 2, stepMs: 10, throwAtStep: 1, throwTimes: 1 },
  // Throws on every attempt: handler.error after the third.
  retry_exhausted: { steps: 2, stepMs: 10, throwAtStep: 1, throwTimes: 3 },
  // Never returns; its 1.5 s timeout ends it (attempt.timeout).
  hang: { steps: 2, stepMs: 10, hangAtStep: 1, timeoutMs: 1_500 },
  // One hung attempt among fast siblings: it holds its whole batch for 20 s on each of its
  // attempts (a batch settles when its invocation ends), longer than the retry delay and the
  // heartbeat timeout, so its siblings' retries and re-dispatches wait behind it. Shorter than
  // the policy's own timeout only to keep the soak's length bounded.
  hung_sibling: { steps: 2, stepMs: 10, hangAtStep: 1, timeoutMs: 20_000 },
  // Heartbeats once, then dies mid-run on every attempt: its consumer invocation
  // crashes (the attempts beside it in its batch die with it) and the tracker declares
  // the attempt lost 5 s after its last heartbeat. The 12 s timeout only matters to
  // code where dying merely stops the heartbeats (then it ends the zombie, fenced).
  death: { steps: 10, stepMs: 300, dieAtStep: 5, timeoutMs: 12_000 },
};

/** Execution outcomes a behaviour may end with when no fault (kill, lost message) hit it. */
export const EXPECTED: Record<Behaviour, string[]> = {
  success: ["succeeded"],
  long: ["succeeded"],
  failure: ["failed handler.failed"],
  partial: ["partially_succeeded"],
  retry: ["succeeded"],
  retry_exhausted: ["failed handler.error"],
  hang: ["failed attempt.timeout"],
  hung_sibling: ["failed attempt.timeout"],
  // The tracker normally wins; the attempt's own timeout may if its alarm is late.
  death: ["failed lifecycle.heartbeat_lost", "failed attempt.timeout"],
};

/** Behaviours whose attempts end without a result by themselves: every other one dies only by a fault. */
export const DIES: ReadonlySet<Behaviour> = new Set(["death"]);
/** Behaviours that end succeeded or partially_succeeded when no fault touches them. */
export const SUCCEEDS: ReadonlySet<Behaviour> = new Set(["success", "long", "partial", "retry"]);

/** Deterministic pseudo-random numbers (mulberry32), so a soak can be re-run as it was. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BLOCK = 1_000;
/**
 * Per block of 1,000: slow bursts at fixed offsets, the rest drawn from the fast
 * mix. A death ends (or, where dying is a hang, stalls) its batch on each of its
 * 3 attempts, so deaths come 5 at a time, once per block; a hung sibling holds a
 * batch for 20 s on each of its attempts, twice per block.
 */
const BURSTS: { behaviour: Behaviour; at: number; count: number }[] = [
  { behaviour: "death", at: 100, count: 5 },
  { behaviour: "hung_sibling", at: 200, count: 1 },
  { behaviour: "hang", at: 300, count: 10 },
  { behaviour: "long", at: 500, count: 10 },
  { behaviour: "hung_sibling", at: 600, count: 1 },
  { behaviour: "hang", at: 700, count: 10 },
  { behaviour: "long", at: 900, count: 10 },
];
const FAST: [Behaviour, number][] = [
  ["success", 0.55],
  ["failure", 0.12],
  ["partial", 0.12],
  ["retry", 0.15],
  ["retry_exhausted", 0.06],
];

export function plan(n: number, seed = 20261126): Planned[] {
  const random = rng(seed);
  const out: Planned[] = [];
  for (let i = 0; i < n; i++) {
    const offset = i % BLOCK;
    const burst = BURSTS.find((b) => offset >= b.at && offset < b.at + b.count);
    let behaviour: Behaviour;
    if (burst) behaviour = burst.behaviour;
    else {
      let r = random();
      behaviour = FAST[FAST.length - 1]![0];
      for (const [b, w] of FAST) {
        if (r < w) {
          behaviour = b;
          break;
        }
        r -= w;
      }
    }
    const d = random();
    const duplicate = d < 0.05 ? "immediate" : d < 0.1 ? "delayed" : "none";
    out.push({ index: i, behaviour, input: INPUTS[behaviour], duplicate });
  }
  return out;
}
