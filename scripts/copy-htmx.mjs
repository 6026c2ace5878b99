// Serve htmx from the htmx.org package, not a CDN: copy its build into
// public/vendor/ (git-ignored) after every install. Runs as `postinstall`.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const source = join(dirname(require.resolve("htmx.org/package.json")), "dist", "htmx.min.js");
mkdirSync(join(root, "public", "vendor"), { recursive: true });
copyFileSync(source, join(root, "public", "vendor", "htmx.min.js"));
console.log("htmx: public/vendor/htmx.min.js from the htmx.org package");
