// The pure lifecycle core: no bindings, no I/O. Adapters import from here.
export * from "./states";
export * from "./reasons";
export * from "./transitions";
export * from "./policy";
export * from "./deployment";
export * from "./contract";
export * from "./cron";
export * from "./deadlines";
export * from "./display";
export * from "./redact";
