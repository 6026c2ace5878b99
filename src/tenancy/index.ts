export * from "./members";
export * from "./tokens";
export * from "./validation";
export * from "./workspaces";
export * from "./refs";
