// @segmentd/client: the generated types and client for segmentd's openapi.yaml, and the helpers.
export * from "./client.js";
export * from "./problem.js";
export type { paths, components, operations } from "./generated/schema.js";
