export * from "./audit";
export * from "./ids";
export * from "./queries";
export * from "./records";
export * from "./service";
export * from "./display-filter";
export * from "./audit-queries";
export * from "./metered-db";
