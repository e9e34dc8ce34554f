/**
 * Text from others (an operator's reason, a process's exit detail) never reaches the terminal raw:
 * a newline would forge a row or an event line, an ESC sequence would rewrite the screen.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { renderEvent } from "../../src/cli/commands/events.ts";
import { table } from "../../src/cli/format.ts";
import { printable } from "../../src/lib/printable.ts";

const FORGED = "drill\n13:00:00.000  instance.started     api-0          [operator] all good\u001b[2J";

test("printable writes control characters, line separators and bidi overrides as escapes", () => {
  assert.equal(printable("a\nb\rc\td"), "a\\nb\\rc\\td");
  assert.equal(printable("\u001b[31mred"), "\\u001b[31mred");
  assert.equal(printable("x\u2028y\u202ez"), "x\\u2028y\\u202ez");
  assert.equal(printable("plain — ünïcode ✓"), "plain — ünïcode ✓");
});

test("an event whose message carries a newline and ESC stays on one line, escaped", () => {
  const line = renderEvent({
    seq: 1,
    at: Date.now(),
    type: "rollback.started",
    service: "api",
    reason: "operator",
    message: `rollback of api: ${FORGED}`,
  } as Parameters<typeof renderEvent>[0]);
  assert.equal(line.split("\n").length, 1);
  assert.ok(!line.includes("\u001b"));
  assert.match(line, /drill\\n13:00:00\.000/);
});

test("a table cell cannot add a row", () => {
  const text = table(["ID", "REASON"], [["1", FORGED]]);
  assert.equal(text.split("\n").length, 2);
  assert.ok(!text.includes("\u001b"));
});
