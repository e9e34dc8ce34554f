import assert from "node:assert/strict";
import { test } from "node:test";
import { newRequestId } from "../../../src/traffic/proxy/requestId.ts";

test("request ids are UUID-shaped and never repeat", () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const seen = new Set<string>();
  for (let i = 0; i < 50_000; i++) {
    const id = newRequestId();
    assert.match(id, uuid);
    seen.add(id);
  }
  assert.equal(seen.size, 50_000);
});
