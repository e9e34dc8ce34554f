/** The pure Redis failover decisions: replica choice, refusal on lag, fencing, verification. */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decideStore,
  type MemberView,
  type StoreView,
  verifyStore,
} from "../../../src/decide/stateful/redisFailover.ts";

const member = (index: number, over: Partial<MemberView> = {}): MemberView => ({
  name: `cache-${index}`,
  index,
  port: 17000 + index,
  zone: ["a", "b", "c"][index % 3]!,
  priority: 100,
  process: "running",
  failures: 0,
  role: index === 0 ? "primary" : "replica",
  offset: 1000,
  follows: index === 0 ? null : 17000,
  linkUp: index !== 0,
  ...over,
});

const view = (members: MemberView[], over: Partial<StoreView> = {}): StoreView => ({
  store: "cache",
  epoch: 1,
  primary: "cache-0",
  members,
  primaryOffset: 1000,
  primaryObservedAt: 9_800,
  policy: { failures: 3, maxLagOnFailoverBytes: 100, onLag: "refuse", writeFenceMs: 1000 },
  ...over,
});

const failed = (over: Partial<MemberView> = {}) => member(0, { failures: 3, ...over });

test("a healthy store needs nothing; a primary below the failure threshold is not failed over", () => {
  assert.deepEqual(decideStore(view([member(0), member(1), member(2)]), 10_000), []);
  assert.deepEqual(decideStore(view([member(0, { failures: 2 }), member(1), member(2)]), 10_000), []);
});

test("failover promotes the most advanced replica, repoints the other, takes the next epoch", () => {
  const [action] = decideStore(
    view([failed(), member(1, { offset: 990 }), member(2, { offset: 1000 })]),
    10_000,
  );
  assert.ok(action?.kind === "failover");
  assert.equal(action.to, "cache-2");
  assert.deepEqual(action.repoint, ["cache-1"]);
  assert.equal(action.epoch, 2);
  assert.equal(action.loss.knownBytes, 0);
  assert.equal(action.loss.sinceObservedMs, 200);
  assert.deepEqual(
    action.reasons.map((r) => r.code),
    ["primary-unreachable", "replica-chosen"],
  );
});

test("priority comes before offset; priority 0 is never promoted; unreachable replicas are out", () => {
  const members = [failed(), member(1, { offset: 950, priority: 10 }), member(2, { offset: 1000 })];
  const [action] = decideStore(view(members), 10_000);
  assert.ok(action?.kind === "failover");
  assert.equal(action.to, "cache-1");
  const [never] = decideStore(
    view([failed(), member(1, { priority: 0 }), member(2, { failures: 1 })]),
    10_000,
  );
  assert.ok(never?.kind === "refuse");
  const reason = never.reasons.find((r) => r.code === "no-eligible-replica");
  assert.ok(reason?.code === "no-eligible-replica");
  assert.deepEqual(
    reason.candidates.map((c) => c.excluded),
    ["priority 0 (never promoted)", "unreachable"],
  );
});

test("independence from the failed zone breaks a tie in priority before offset", () => {
  // cache-3 shares zone a with the failed cache-0 and has more data; cache-1 (zone b) is preferred.
  const members = [
    failed(),
    member(1, { offset: 990 }),
    member(2, { priority: 0 }),
    member(3, { offset: 1000 }),
  ];
  const [action] = decideStore(view(members), 10_000);
  assert.ok(action?.kind === "failover");
  assert.equal(action.to, "cache-1");
  const chosen = action.reasons.find((r) => r.code === "replica-chosen");
  assert.ok(chosen?.code === "replica-chosen");
  assert.equal(chosen.independent, true);
  assert.equal(chosen.lagBytes, 10);
});

test("a replica within the lag bound beats a preferred one past it", () => {
  const members = [failed(), member(1, { offset: 500, priority: 1 }), member(2, { offset: 950 })];
  const [action] = decideStore(view(members), 10_000);
  assert.ok(action?.kind === "failover");
  assert.equal(action.to, "cache-2");
});

test("refusal on lag states the data-loss bound; warn promotes and says so", () => {
  const members = [failed(), member(1, { offset: 500 }), member(2, { offset: 400 })];
  const [refused] = decideStore(view(members), 10_000);
  assert.ok(refused?.kind === "refuse");
  assert.equal(refused.best, "cache-1");
  assert.equal(refused.loss?.knownBytes, 500);
  assert.match(refused.loss?.statement ?? "", /500 bytes .* within 1000 ms/);
  const lag = refused.reasons.find((r) => r.code === "lag-exceeds-bound");
  assert.deepEqual(lag, {
    code: "lag-exceeds-bound",
    member: "cache-1",
    lagBytes: 500,
    boundBytes: 100,
    policy: "refuse",
  });
  const warnView = view(members);
  warnView.policy.onLag = "warn";
  const [warned] = decideStore(warnView, 10_000);
  assert.ok(warned?.kind === "failover");
  assert.equal(warned.lagWarning, true);
  assert.equal(warned.loss.knownBytes, 500);
});

test("fencing: a member reporting primary that the journal does not name is demoted", () => {
  const actions = decideStore(
    view(
      [
        member(0, { role: "replica", follows: 17001, linkUp: true }),
        member(1, { role: "primary", follows: null }),
        member(2, { follows: 17001 }),
      ],
      {
        primary: "cache-1",
        epoch: 2,
      },
    ),
    10_000,
  );
  assert.deepEqual(actions, []);
  const stale = decideStore(
    view(
      [
        member(0, { role: "primary" }),
        member(1, { role: "primary", follows: null }),
        member(2, { follows: 17001 }),
      ],
      {
        primary: "cache-1",
        epoch: 2,
      },
    ),
    10_000,
  );
  assert.deepEqual(stale, [
    {
      kind: "demote",
      member: "cache-0",
      reasons: [{ code: "stale-primary", member: "cache-0", epoch: 2, primary: "cache-1" }],
    },
  ]);
});

test("an exited replica is restarted as a replica; a replica on the wrong primary is repointed", () => {
  const actions = decideStore(
    view([member(0), member(1, { process: "exited" }), member(2, { follows: 17001 })]),
    10_000,
  );
  assert.deepEqual(
    actions.map((a) => [a.kind, "member" in a ? a.member : ""]),
    [
      ["restart-replica", "cache-1"],
      ["repoint", "cache-2"],
    ],
  );
});

test("verification: writable primary, replicas following within the bound, old primary a replica", () => {
  const after = view(
    [
      member(0, { role: "replica", follows: 17002, linkUp: true, offset: 2000 }),
      member(1, { follows: 17002, offset: 1990 }),
      member(2, { role: "primary", follows: null, offset: 2000 }),
    ],
    { primary: "cache-2", primaryOffset: 2000, epoch: 2 },
  );
  assert.equal(verifyStore(after, true, "cache-0").verified, true);
  assert.equal(verifyStore(after, false, "cache-0").verified, false);
  after.members[0] = member(0, { process: "exited" });
  const result = verifyStore(after, true, "cache-0");
  assert.equal(result.verified, false);
  assert.deepEqual(
    result.checks.filter((c) => !c.ok).map((c) => c.check),
    ["old-primary-fenced"],
  );
});

test("a recorded primary answering as a replica (a promotion a crash interrupted) is promoted first", () => {
  const actions = decideStore(
    view(
      [
        member(0, { process: "exited", role: null }),
        member(1, { role: "replica", follows: 17000, linkUp: false }),
        member(2),
      ],
      {
        primary: "cache-1",
        epoch: 2,
      },
    ),
    10_000,
  );
  assert.deepEqual(
    actions.map((a) => [a.kind, "member" in a ? a.member : ""]),
    [
      ["complete-promotion", "cache-1"],
      ["restart-replica", "cache-0"],
      ["repoint", "cache-2"],
    ],
  );
});
