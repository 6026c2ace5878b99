/**
 * Whether a run of `type` with `input` may be created now, whoever asks (the
 * API's POST /runs and retry, the admin's retry): the type is registered, the
 * input passes its schema, and the type's timing contract holds (contract
 * section 5: a violated rule refuses new work of its type). Each entry point
 * turns a refusal into its own answer (a problem+json, an admin page).
 */
import { describeViolation, violationsFor, type ContractReport } from "./lifecycle";
import { getOperation, operationTypes, type InputIssue } from "./operations";
import type { RunRecord } from "./runs";

export type RunRequestCheck =
  /** `input`: the input as the type's schema parsed it. */
  | { ok: true; type: string; input: unknown }
  | { ok: false; refusal: "unknown_type"; type: string; known: string[] }
  /** `issues`: paths relative to the input ("(root)" for the input itself). */
  | { ok: false; refusal: "invalid_input"; type: string; issues: InputIssue[] }
  | { ok: false; refusal: "contract_violated"; type: string; violations: Array<{ rule: string; description: string }> };

export function checkRunRequest(type: string, input: unknown, contract: ContractReport): RunRequestCheck {
  const op = getOperation(type);
  if (!op) return { ok: false, refusal: "unknown_type", type, known: operationTypes() };
  const prepared = op.prepare(input);
  if (!prepared.ok) return { ok: false, refusal: "invalid_input", type: op.type, issues: prepared.issues };
  const violated = violationsFor(contract, op.type);
  if (violated.length > 0) {
    return { ok: false, refusal: "contract_violated", type: op.type, violations: violated.map((v) => ({ rule: v.rule, description: describeViolation(v) })) };
  }
  return { ok: true, type: op.type, input: prepared.input };
}

/**
 * Retry as a new run (contract section 7): only a terminal run, because a
 * second run beside a live one would do the same work twice at once while the
 * live one may still succeed (cancel it first, or wait). A run that succeeded
 * may be retried, as Temporal's reset or Workflows' restart allow: the operator
 * may want the work done again. The original's input is checked against its
 * type as registered now, so a type removed by a deploy or a schema that no
 * longer takes the input is refused here, not a run that fails at once.
 */
export function checkRetry(original: RunRecord, contract: ContractReport): RunRequestCheck | { ok: false; refusal: "not_terminal"; status: string } {
  if (original.status !== "completed") return { ok: false, refusal: "not_terminal", status: original.status };
  return checkRunRequest(original.type, original.input, contract);
}
