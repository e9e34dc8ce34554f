/**
 * The per-user pointer `homeostat up` leaves for an API port decides where the CLI sends a token
 * and which file it reads the token from. A pointer someone else could have written is not
 * trusted, and a file that does not hold a token is never sent, whatever a pointer names.
 */

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import {
  findToken,
  pointerPath,
  readControllerPointer,
  writeControllerPointer,
} from "../../src/cli/tokenLookup.ts";
import { newTokenSecret } from "../../src/server/auth/tokens.ts";

let root: string;
let env: NodeJS.ProcessEnv;
let stateDir: string;
const PORT = 7999;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "homeostat-pointer-"));
  env = { HOMEOSTAT_CONFIG_DIR: join(root, "config") };
  stateDir = join(root, "state");
  mkdirSync(stateDir, { mode: 0o700 });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function pointTo(tokenFile: string, url = `http://127.0.0.1:${PORT}`): string {
  return writeControllerPointer(
    { apiPort: PORT, url, stateDir, tokenFile, pid: process.pid, writtenAt: Date.now() },
    env,
  );
}

test("the pointer up wrote (0600, ours) leads to the admin token", () => {
  const secret = newTokenSecret();
  const tokenFile = join(stateDir, "admin-token");
  writeFileSync(tokenFile, `${secret}\n`, { mode: 0o600 });
  pointTo(tokenFile);
  const found = findToken(PORT, {}, env);
  assert.equal(found.token, secret);
  assert.equal(found.source, tokenFile);
});

test("a pointer others may write is not trusted: no token read through it, nor its URL used", () => {
  const tokenFile = join(stateDir, "admin-token");
  writeFileSync(tokenFile, `${newTokenSecret()}\n`, { mode: 0o600 });
  const path = pointTo(tokenFile, "http://attacker.example:80");
  chmodSync(path, 0o666);
  assert.equal(readControllerPointer(PORT, env), null, "a world-writable pointer is ignored");
  const found = findToken(PORT, {}, env);
  assert.equal(found.token, undefined);
  assert.ok(
    found.looked.some((l) => l.includes(pointerPath(PORT, env)) && /writable by others/.test(l)),
    found.looked.join("\n"),
  );
});

test("a pointer whose URL is not this port's API is not trusted", () => {
  const tokenFile = join(stateDir, "admin-token");
  writeFileSync(tokenFile, `${newTokenSecret()}\n`, { mode: 0o600 });
  pointTo(tokenFile, "http://attacker.example:80");
  assert.equal(readControllerPointer(PORT, env), null);
  pointTo(tokenFile, `file:///etc/passwd`);
  assert.equal(readControllerPointer(PORT, env), null);
  pointTo(tokenFile, `https://10.1.2.3:${PORT}`);
  assert.equal(readControllerPointer(PORT, env)?.url, `https://10.1.2.3:${PORT}`, "a TLS bind address is");
});

test("a file that does not hold a token is never sent as one, whatever names it", () => {
  const secretFile = join(root, "id_ed25519");
  writeFileSync(secretFile, "-----BEGIN OPENSSH PRIVATE KEY----- not for anyone\n", { mode: 0o600 });
  pointTo(secretFile);
  const found = findToken(PORT, {}, env);
  assert.equal(found.token, undefined, "the file's content is not a token");
  assert.ok(
    found.looked.some((l) => l.includes(secretFile) && /not a token/.test(l)),
    found.looked.join("\n"),
  );
  writeFileSync(join(root, "admin-token"), "hunter2\n", { mode: 0o600 });
  const viaStateDir = findToken(PORT, { stateDir: root }, env);
  assert.equal(viaStateDir.token, undefined);
});
