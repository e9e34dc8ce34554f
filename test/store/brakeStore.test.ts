import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import type { BrakeStore } from "../../src/store/brakeStore.ts";
import { StateStore } from "../../src/store/index.ts";
import { pgStoreUrl } from "../helpers/postgres.ts";
import { tempStateDir } from "./tempStateDir.ts";

/**
 * The brakes' store on both backends, through StateStore (migration 9 included): SQLite in a
 * temporary state directory, and the machine's PostgreSQL in a schema of its own.
 */
type Backend = "sqlite" | "postgres";

interface Opened {
  store: BrakeStore;
  state: StateStore;
  /** Opens the same store again (a restarted controller). */
  reopen(): Opened;
}

function open(t: TestContext, backend: Backend): Opened {
  const dir = tempStateDir(t);
  const url = backend === "postgres" ? pgStoreUrl(t, "hs_brakes") : undefined;
  const openOnce = (): Opened => {
    const state = StateStore.open(dir, url);
    t.after(() => state.close());
    return { store: state.brakes, state, reopen: openOnce };
  };
  return openOnce();
}

const T0 = 1_800_000_000_000;

for (const backend of ["sqlite", "postgres"] as const) {
  describe(`BrakeStore on ${backend}`, () => {
    it("is not paused in a new store", (t) => {
      assert.equal(open(t, backend).store.pause(), null);
    });

    it("keeps who paused, why and since when, across a reopen (a controller restart)", (t) => {
      const first = open(t, backend);
      assert.deepEqual(first.store.setPaused({ by: "alice", reason: "db migration", since: T0 }), {
        changed: true,
        previous: null,
      });
      first.state.close();
      const again = first.reopen();
      assert.deepEqual(again.store.pause(), { by: "alice", reason: "db migration", since: T0 });
    });

    it("does not overwrite a pause in force: the second pause changes nothing and says whose it is", (t) => {
      const { store } = open(t, backend);
      store.setPaused({ by: "alice", reason: "db migration", since: T0 });
      assert.deepEqual(store.setPaused({ by: "bob", reason: "other", since: T0 + 5 }), {
        changed: false,
        current: { by: "alice", reason: "db migration", since: T0 },
      });
      assert.equal(store.pause()?.by, "alice");
    });

    it("resumes, returning the pause it ended; resuming when not paused changes nothing", (t) => {
      const { store } = open(t, backend);
      assert.deepEqual(store.resume("bob", T0), { changed: false, current: null });
      store.setPaused({ by: "alice", reason: "drill", since: T0 });
      assert.deepEqual(store.resume("bob", T0 + 60_000), {
        changed: true,
        previous: { by: "alice", reason: "drill", since: T0 },
      });
      assert.equal(store.pause(), null);
      // Paused again later: a fresh pause, by whoever pauses it.
      store.setPaused({ by: "carol", reason: "again", since: T0 + 120_000 });
      assert.deepEqual(store.pause(), { by: "carol", reason: "again", since: T0 + 120_000 });
    });

    it("records automated actions, lists those since a time oldest first, and prunes old ones", (t) => {
      const opened = open(t, backend);
      const { store } = opened;
      store.recordAutomated({ kind: "restart", service: "api", target: "api-1", at: T0 + 2 });
      store.recordAutomated({ kind: "failover", service: null, target: "zone-a", at: T0 });
      store.recordAutomated({ kind: "rollback", service: "web", target: "web", at: T0 + 1 });
      store.recordAutomated({ kind: "restart", service: "api", target: "api-1", at: T0 + 2 });
      assert.deepEqual(store.automatedSince(T0 + 1), [
        { kind: "rollback", service: "web", target: "web", at: T0 + 1 },
        { kind: "restart", service: "api", target: "api-1", at: T0 + 2 },
        { kind: "restart", service: "api", target: "api-1", at: T0 + 2 },
      ]);
      assert.equal(store.pruneAutomated(T0 + 2), 2);
      opened.state.close();
      assert.equal(opened.reopen().store.automatedSince(0).length, 2, "they survive a reopen");
    });

    it("reads back whole epoch milliseconds (64-bit on both backends)", (t) => {
      const { store } = open(t, backend);
      store.setPaused({ by: "alice", reason: "r", since: 8_640_000_000_000_000 });
      assert.equal(store.pause()?.since, 8_640_000_000_000_000);
    });

    it("refuses a kind it does not know (the schema checks it)", (t) => {
      const { store } = open(t, backend);
      assert.throws(() =>
        store.recordAutomated({ kind: "reboot" as "restart", service: null, target: "x", at: T0 }),
      );
    });
  });
}
