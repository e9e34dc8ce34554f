import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { StateStore } from "../../src/store/index.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { tempStateDir } from "./tempStateDir.ts";

const WRITER = fileURLToPath(new URL("./fixtures/crashingWriter.ts", import.meta.url));
const ROUNDS = 3;

test("a controller SIGKILLed mid-write leaves a sound database: contiguous events, at most one pending intent, a stale lock", {
  timeout: 120_000,
}, async (t) => {
  const dir = tempStateDir(t);
  let eventsBefore = 0;

  for (let round = 1; round <= ROUNDS; round++) {
    const child = spawn(process.execPath, [WRITER, dir], { stdio: ["ignore", "pipe", "pipe"] });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    let printed = 0;
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) if (line.trim() !== "") printed = Math.max(printed, Number(line));
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });

    await waitFor(() => printed >= 300 || child.exitCode !== null, {
      timeoutMs: 60_000,
      what: `writer round ${round} to commit 300 iterations`,
    });
    assert.equal(child.exitCode, null, `the writer died on its own: ${stderr}`);
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    const [, signal] = await exited;
    assert.equal(signal, "SIGKILL");
    const committed = printed;

    // The raw file first: SQLite's own opinion, before StateStore touches it.
    const raw = new DatabaseSync(`${dir}/state.db`);
    const check = raw
      .prepare("PRAGMA quick_check")
      .all()
      .map((row) => row.quick_check);
    raw.close();
    assert.deepEqual(check, ["ok"]);

    const store = StateStore.open(dir);
    try {
      const events = store.listEvents();
      const thisRound = events.length - eventsBefore;
      assert.ok(
        thisRound >= committed,
        `round ${round}: ${thisRound} events survived, ${committed} were reported`,
      );
      events.forEach((event, index) => {
        assert.equal(event.seq, index + 1, "seqs are contiguous from 1");
      });
      for (const event of events.slice(eventsBefore)) {
        const i = (event.data as { i: number }).i;
        assert.equal(event.message, `event ${i}`, "no half-written event");
        assert.equal(event.instance, `web-${i % 3}`);
      }

      const journal = store.listJournal();
      const pending = store.pendingIntents();
      assert.ok(pending.length <= 1, `at most the interrupted action is pending, got ${pending.length}`);
      if (pending.length === 1)
        assert.equal(pending[0]!.id, journal.at(-1)!.id, "only the last intent can be pending");
      for (const entry of journal) {
        if (entry.result) assert.match(entry.result.detail, /^done \d+$/);
      }

      const { previous } = store.acquireControllerLock({
        pid: process.pid,
        apiPort: 1,
        startedAt: Date.now(),
      });
      assert.equal(previous?.pid, child.pid, "the killed writer's lock is recognised as stale");
      assert.equal(previous?.apiPort, 4711);
      // Resolve the interrupted action as a recovering controller would, and hand the lock on.
      for (const entry of pending)
        store.journalResult(entry.id, { at: Date.now(), ok: false, detail: "done 0" });
      store.releaseControllerLock(process.pid);
      eventsBefore = events.length;
    } finally {
      store.close();
    }
  }
});
