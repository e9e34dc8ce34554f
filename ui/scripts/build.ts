/**
 * Builds the dashboard (ui/) into ui/dist/, which the controller serves at `/`. Run by
 * `npm install` (the `prepare` script, on the pinned Node 24) and by `npm start` with
 * `--if-missing` (a checkout whose install skipped scripts still gets a dashboard).
 * The Vite configuration is here rather than in a vite.config.ts: nothing to load or bundle first,
 * so a build takes about a second.
 *
 * Usage: node ui/scripts/build.ts [--if-missing]
 */

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const UI = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(UI, "dist");

if (process.argv.includes("--if-missing") && existsSync(join(DIST, "index.html"))) process.exit(0);

let vite: typeof import("vite");
try {
  vite = await import("vite");
} catch {
  console.error(
    "homeostat: cannot build the dashboard: vite is not installed (a production-only install?). " +
      "Run `npm install` in the repository, or `npm run build:ui`; the API and CLI work without it.",
  );
  process.exit(process.argv.includes("--if-missing") ? 0 : 1);
}

const started = performance.now();
await vite.build({
  root: UI,
  configFile: false,
  logLevel: "warn",
  // Preact's JSX runtime through Vite's own (Oxc) transform: no Babel, no plugin to install.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  resolve: { alias: { react: "preact/compat", "react-dom": "preact/compat" } },
  build: {
    outDir: DIST,
    emptyOutDir: true,
    // Everything in files: the page's Content-Security-Policy allows scripts from 'self' only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: "es2022",
    reportCompressedSize: false,
  },
});
console.log(`homeostat: dashboard built into ui/dist/ in ${Math.round(performance.now() - started)} ms`);
