// Serve htmx and idiomorph's htmx extension from their npm packages, not a
// CDN: copy their builds into public/vendor/ (git-ignored) after every
// install. Runs as `postinstall` (and `npm run assets`).
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const vendor = join(root, "public", "vendor");
mkdirSync(vendor, { recursive: true });

/** [package, file inside it, name under public/vendor] */
const FILES = [
  ["htmx.org", "dist/htmx.min.js", "htmx.min.js"],
  // The "morph" swap style for htmx (bundles idiomorph itself).
  ["idiomorph", "dist/idiomorph-ext.min.js", "idiomorph-ext.min.js"],
];
for (const [pkg, file, name] of FILES) {
  // Resolved through each package's `exports` (both export their dist/ files).
  copyFileSync(require.resolve(`${pkg}/${file}`), join(vendor, name));
  console.log(`${pkg}: public/vendor/${name}`);
}
