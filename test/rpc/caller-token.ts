/**
 * The API token examples/caller-worker is given as its OPLIFE_TOKEN secret when
 * it runs beside oplife in the tests (vitest.config.ts); the caller-worker
 * test stores its hash in a workspace, as `token create` would.
 */
export const CALLER_TOKEN = "olt_caller_example_test_token";
