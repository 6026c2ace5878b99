/**
 * Reading the served OpenAPI document as a client would: fetch it, find an
 * operation, and check a real answer against it with a JSON Schema validator
 * (@cfworker/json-schema: draft 2020-12, OpenAPI 3.1's dialect, and no
 * `eval`, which workerd refuses). Independent of the zod schemas the
 * document was generated from, so a generator that drops a constraint, or a
 * route that answers outside its schema, is caught.
 */
import { Validator, type Schema } from "@cfworker/json-schema";
import { expect } from "vitest";
import { z } from "zod";
import { call } from "./api";

const schemaObject = z.record(z.string(), z.unknown());
const mediaTypes = z.record(z.string(), z.object({ schema: schemaObject }).loose());
const responseObject = z
  .object({ description: z.string(), content: mediaTypes.optional(), headers: z.record(z.string(), z.object({ required: z.boolean().optional() }).loose()).optional() })
  .loose();
const parameterObject = z.object({ name: z.string(), in: z.enum(["query", "header", "path", "cookie"]), required: z.boolean().optional(), schema: schemaObject }).loose();
const operationObject = z
  .object({
    security: z.array(z.record(z.string(), z.array(z.string()))).optional(),
    parameters: z.array(parameterObject).optional(),
    requestBody: z.object({ required: z.boolean().optional(), content: mediaTypes }).loose().optional(),
    responses: z.record(z.string(), responseObject),
  })
  .loose();
export const openApiDocument = z
  .object({
    openapi: z.string(),
    info: z.object({ title: z.string(), version: z.string() }).loose(),
    servers: z.array(z.object({ url: z.string() }).loose()),
    paths: z.record(z.string(), z.record(z.string(), operationObject)),
    components: z.object({ schemas: z.record(z.string(), schemaObject), securitySchemes: z.record(z.string(), schemaObject) }).loose(),
  })
  .loose();
export type OpenApiDocument = z.infer<typeof openApiDocument>;
export type Operation = z.infer<typeof operationObject>;

/** GET /api/v1/openapi.json, without a token (the document is public). */
export async function fetchDocument(): Promise<OpenApiDocument> {
  const res = await call("/api/v1/openapi.json");
  expect(res.status).toBe(200);
  return openApiDocument.parse(await res.json());
}

/** The operation at `method` `path` (the document's own path, e.g. `/runs/{id}`); fails the test if absent. */
export function operation(doc: OpenApiDocument, method: string, path: string): Operation {
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (!op) throw new Error(`the document has no ${method.toUpperCase()} ${path}`);
  return op;
}

/**
 * A validator for `schema` taken from `doc`: the document's components ride
 * along so its `#/components/schemas/…` references resolve as they do for a
 * client reading the whole document.
 */
export function validatorFor(doc: OpenApiDocument, schema: Record<string, unknown>): Validator {
  return new Validator({ ...schema, components: doc.components } as Schema, "2020-12", false);
}

/** The JSON Schema of `op`'s request body (application/json). */
export function requestBodySchema(op: Operation): Record<string, unknown> {
  const schema = op.requestBody?.content["application/json"]?.schema;
  if (!schema) throw new Error("the operation documents no application/json request body");
  return schema;
}

/** The schema of `op`'s parameter `name` in `where`. */
export function parameterSchema(op: Operation, where: "query" | "header" | "path", name: string): Record<string, unknown> {
  const p = op.parameters?.find((x) => x.in === where && x.name.toLowerCase() === name.toLowerCase());
  if (!p) throw new Error(`the operation documents no ${where} parameter ${name}`);
  return p.schema;
}

/**
 * Assert that `res` is an answer `op` documents: its status is listed, its
 * media type is the one listed for that status, its JSON body validates
 * against the listed schema (or there is no body, where the document lists
 * no content), and the headers the document names are there when it says
 * they are required. Returns the body.
 */
export async function expectDocumentedAnswer(doc: OpenApiDocument, op: Operation, res: Response): Promise<unknown> {
  const documented = op.responses[String(res.status)];
  const text = await res.text();
  expect(documented, `status ${res.status} is not documented; body: ${text.slice(0, 300)}`).toBeDefined();
  if (!documented) return undefined;
  if (!documented.content) {
    // Documented without content (a 204): the answer has no body either.
    expect(text, `${res.status} is documented without a body`).toBe("");
    return undefined;
  }
  const contentType = (res.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
  const media = documented.content?.[contentType];
  expect(media, `${res.status} answered ${contentType}, documented: ${Object.keys(documented.content ?? {}).join(", ")}`).toBeDefined();
  const body: unknown = JSON.parse(text);
  if (media) {
    const result = validatorFor(doc, media.schema).validate(body);
    expect(result.errors.map((e) => `${e.instanceLocation}: ${e.error}`), text.slice(0, 500)).toEqual([]);
  }
  for (const [name, header] of Object.entries(documented.headers ?? {})) {
    if (header.required) expect(res.headers.get(name), `header ${name}`).not.toBeNull();
  }
  return body;
}
