import assert from "node:assert/strict";
import { test } from "node:test";
import { type DeadlineEntry, type DeadlineList, Deadlines } from "../../../src/traffic/proxy/deadlineList.ts";
import { waitFor } from "../../helpers/waitFor.ts";

class Entry implements DeadlineEntry {
  deadlineAt = 0;
  deadlinePrev: DeadlineEntry | null = null;
  deadlineNext: DeadlineEntry | null = null;
  deadlineList: DeadlineList | null = null;
  firedAt: number | null = null;
  readonly name: string;
  readonly fired: string[];
  constructor(name: string, fired: string[]) {
    this.name = name;
    this.fired = fired;
  }
  onDeadline(): void {
    this.firedAt = performance.now();
    this.fired.push(this.name);
  }
}

test("deadlines fire in order, never early, and disarmed ones never fire", async (t) => {
  const deadlines = new Deadlines();
  t.after(() => deadlines.clear());
  const fired: string[] = [];
  const entries = ["a", "b", "c", "d"].map((name) => new Entry(name, fired));
  const armedAt = new Map<Entry, number>();
  for (const entry of entries) {
    armedAt.set(entry, performance.now());
    deadlines.arm(entry, 40);
  }
  const other = new Entry("other", fired);
  deadlines.arm(other, 80); // another duration, another list
  Deadlines.disarm(entries[1]!);
  Deadlines.disarm(entries[3]!);
  Deadlines.disarm(entries[3]!); // twice is harmless
  assert.equal(entries[1]!.deadlineList, null);

  await waitFor(() => fired.length === 3, { timeoutMs: 5_000, intervalMs: 5, what: "three deadlines" });
  assert.deepEqual(fired, ["a", "c", "other"]);
  for (const entry of [entries[0]!, entries[2]!]) {
    assert.ok(entry.firedAt! - armedAt.get(entry)! >= 40, `${entry.name} fired early`);
    assert.equal(entry.deadlineList, null, "off the list once fired");
  }
});

test("a list re-arms its timer for deadlines armed after the first one fired", async (t) => {
  const deadlines = new Deadlines();
  t.after(() => deadlines.clear());
  const fired: string[] = [];
  deadlines.arm(new Entry("first", fired), 20);
  await waitFor(() => fired.length === 1, { timeoutMs: 5_000, intervalMs: 5, what: "the first deadline" });
  const second = new Entry("second", fired);
  const thirdArmed = new Entry("third", fired);
  deadlines.arm(second, 20);
  deadlines.arm(thirdArmed, 20);
  deadlines.arm(second, 20); // re-arming moves it behind the third
  await waitFor(() => fired.length === 3, { timeoutMs: 5_000, intervalMs: 5, what: "two more deadlines" });
  assert.deepEqual(fired, ["first", "third", "second"]);
});

test("clear disarms everything: nothing fires afterwards", async (t) => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  deadlines.arm(new Entry("x", fired), 10);
  deadlines.clear();
  const probe = new Deadlines();
  t.after(() => probe.clear());
  const later: string[] = [];
  probe.arm(new Entry("later", later), 40);
  await waitFor(() => later.length === 1, { timeoutMs: 5_000, intervalMs: 5, what: "a later deadline" });
  assert.deepEqual(fired, [], "the cleared deadline (due 30 ms earlier) never fired");
});
