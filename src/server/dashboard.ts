/**
 * The dashboard's files, served by the controller at `/`: the page, its hashed assets and its icon
 * from `ui/dist/` (built by `npm install` or on first `npm start`). They are public — they hold no
 * data; the page asks the API for everything with the token the user pastes — and each is sent
 * with a Content-Security-Policy that allows only this origin, so an injected string can neither
 * run a script nor send data elsewhere.
 *
 * Only files found in `ui/dist/` are served, by exact name from a list made by reading that
 * directory, never by joining a requested path: `..`, encoded slashes and absolute paths cannot
 * reach anything else. The existing Host guard applies as to every route.
 */

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { route } from "./route.ts";

/** Where `npm run build:ui` puts the dashboard. */
export const DASHBOARD_DIST: string = fileURLToPath(new URL("../../ui/dist/", import.meta.url));

/**
 * The page may load scripts, styles, images and fonts from this origin and talk to this origin's
 * API, nothing else; it may not be framed (clickjacking) and has no inline script or style.
 */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

/** A name Vite gives a built file: letters, digits, `.`, `_`, `-`, not starting with a dot. */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** The files of a built dashboard by URL path (`/index.html`, `/assets/index-AbC123.js`). */
function listFiles(dist: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string, prefix: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of entries) {
      if (!FILE_NAME.test(name)) continue;
      const path = join(dir, name);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat?.isDirectory()) {
        if (prefix === "") walk(path, `/${name}`);
      } else if (stat?.isFile() && TYPES[extname(name)] !== undefined) {
        files.set(`${prefix}/${name}`, path);
      }
    }
  };
  walk(dist, "");
  return files;
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Homeostat: dashboard not built</title></head>
<body><main><h1>The dashboard is not built</h1>
<p>Run <code>npm install</code> (it builds it) or <code>npm run build:ui</code> in the Homeostat
repository, then reload. The API and the CLI (<code>homeostat status</code>) work without it.</p>
</main></body></html>
`;

export interface DashboardOptions {
  /** The built dashboard (default: the repository's `ui/dist/`). */
  dist?: string;
}

/**
 * Declares the dashboard's routes on `app`: `GET /` (the page), `GET /assets/:file`,
 * `GET /favicon.svg`, all public. The page learns who its token is from `GET /v1/whoami`
 * (src/server/routes/authRoutes.ts), to say so and to offer forced actions only to an admin.
 */
export function registerDashboard(app: FastifyInstance, options: DashboardOptions = {}): void {
  const dist = options.dist ?? DASHBOARD_DIST;
  let files = listFiles(dist);
  let listedAt = Date.now();
  /** A file by URL path; a rebuilt dashboard (new hashes) is picked up without a restart. */
  const find = (path: string): string | undefined => {
    const found = files.get(path);
    if (found !== undefined && existsSync(found)) return found;
    if (Date.now() - listedAt > 1_000) {
      files = listFiles(dist);
      listedAt = Date.now();
    }
    return files.get(path);
  };
  const send = (reply: FastifyReply, path: string, immutable: boolean): FastifyReply => {
    void reply
      .header("content-security-policy", DASHBOARD_CSP)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .header("x-frame-options", "DENY")
      .header("cross-origin-opener-policy", "same-origin")
      .header("cross-origin-resource-policy", "same-origin");
    const file = find(path);
    if (file === undefined) {
      if (path !== "/index.html") {
        return reply
          .status(404)
          .send({ error: { code: "HS_NOT_FOUND", message: `no dashboard file ${path}` } });
      }
      return reply.status(503).header("cache-control", "no-store").type(TYPES[".html"]!).send(NOT_BUILT);
    }
    // Hashed names never change content: cache them for a year. The page itself is revalidated,
    // so a rebuilt dashboard is picked up on reload.
    return reply
      .header("cache-control", immutable ? "public, max-age=31536000, immutable" : "no-cache")
      .type(TYPES[extname(file)]!)
      .send(readFileSync(file));
  };
  const html = { description: "the dashboard's page", contentType: "text/html" };
  route(app, {
    method: "GET",
    url: "/",
    summary: "The dashboard (a page; its data comes from this API with the user's token)",
    tag: "dashboard",
    access: "public",
    responses: { 200: html },
    handler: ({ reply }) => send(reply, "/index.html", false),
  });
  route(app, {
    method: "GET",
    url: "/assets/:file",
    summary: "The dashboard's scripts and styles (content-hashed names, cached for a year)",
    tag: "dashboard",
    access: "public",
    params: z.object({ file: z.string().regex(FILE_NAME).max(200) }).strict(),
    responses: {
      200: { description: "a script, stylesheet, image or font", contentType: "application/octet-stream" },
    },
    handler: ({ params, reply }) => send(reply, `/assets/${params.file}`, true),
  });
  route(app, {
    method: "GET",
    url: "/favicon.svg",
    summary: "The dashboard's icon",
    tag: "dashboard",
    access: "public",
    responses: { 200: { description: "an SVG icon", contentType: "image/svg+xml" } },
    handler: ({ reply }) => send(reply, "/favicon.svg", false),
  });
}
