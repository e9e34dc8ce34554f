/**
 * Paths of the modules Homeostat starts as processes of their own (the data plane's entry).
 *
 * From a clone, Node runs the TypeScript sources directly (type stripping); installed from the
 * npm package, the same modules are the JavaScript that `npm pack` compiled into dist/ (Node does
 * not strip types under node_modules). A process entry is therefore named by its source file and
 * takes the extension of the module asking for it, so both layouts start the right file.
 */

import { fileURLToPath } from "node:url";

/**
 * The file path of the module `relative` (written as its source, `./main.ts`) resolved against
 * `from` (the caller's `import.meta.url`): `.js` when the caller is itself compiled JavaScript.
 */
export function modulePath(relative: string, from: string): string {
  const compiled = new URL(from).pathname.endsWith(".js");
  return fileURLToPath(new URL(compiled ? relative.replace(/\.ts$/, ".js") : relative, from));
}
