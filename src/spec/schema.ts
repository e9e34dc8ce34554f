/**
 * The YAML surface of a fleet file as zod schemas. They check shape and single values only
 * (types, ranges, unknown keys); rules that relate several values live in `checks.ts`, and
 * defaults are applied in `resolve.ts`, so that the parsed value still says what the file said
 * (needed to merge service settings over `defaults` field by field).
 */
import { validRange, valid as validSemver } from "semver";
import { z } from "zod";
import { describeValue } from "./describeValue.ts";
import { DURATION_PATTERN, tryDurationMs } from "./duration.ts";
import { PERCENT_PATTERN, tryFraction } from "./fraction.ts";
import { TRAFFIC_ENGINES } from "./model.ts";
import { notificationsSchema } from "./notifications.ts";
import { ENV_NAME_PATTERN, expected, expectedText, NAME_PATTERN, strict } from "./schemaParts.ts";
import { storesSchema } from "./stores.ts";

/** Release version keys. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const STATUS_RANGE_PATTERN = /^[1-5]\d\d(-[1-5]\d\d)?$/;

type RawIssue = z.core.$ZodRawIssue;

/** A mapping whose keys must match `keyPattern`, with at least one entry. */
function namedMap<Value extends z.core.SomeType>(
  value: Value,
  options: { keyPattern: RegExp; keyRule: string; what: string; atLeastOne?: string },
) {
  const map = z.record(z.string().regex(options.keyPattern), value, {
    error: (issue: RawIssue) =>
      issue.code === "invalid_key"
        ? `invalid name ${describeValue(issue.input)}: ${options.keyRule}`
        : `expected ${options.what}, got ${describeValue(issue.input)}`,
  });
  const atLeastOne = options.atLeastOne;
  return atLeastOne === undefined
    ? map
    : map.refine((entries) => Object.keys(entries).length > 0, { error: atLeastOne });
}

const NAME_RULE = 'use lowercase letters, digits and "-", starting with a letter, at most 40 characters';
const nameText = expectedText(`a name (${NAME_RULE})`);
const name = z.string(nameText).regex(NAME_PATTERN, nameText);

const nonEmptyText = expectedText("a non-empty string");
const nonEmptyString = z.string(nonEmptyText).min(1, nonEmptyText);
const anyText = expectedText("a string");
const text = z.string(anyText);

const positiveIntError = expected("a positive integer");
const positiveInt = z.number(positiveIntError).int(positiveIntError).min(1, positiveIntError);

function portNumber(min: number) {
  const error = expected(`an integer port between ${min} and 65535`);
  return z.number(error).int(error).min(min, error).max(65535, error);
}

function duration(options: { positive: boolean }) {
  const error = expected(`a ${options.positive ? "positive " : ""}duration like "500ms" or "2s"`);
  const minimum = options.positive ? 1 : 0;
  return z
    .union(
      [
        z
          .string(error)
          .regex(DURATION_PATTERN, error)
          .refine((value) => (tryDurationMs(value) ?? minimum) >= minimum, error),
        z.number(error).int(error).min(minimum, error),
      ],
      error,
    )
    .describe('"250ms", "2s", "1.5s", "1m", "1h", or an integer number of milliseconds');
}
const positiveDuration = duration({ positive: true });
const anyDuration = duration({ positive: false });

const hedgeDelayError = expected('"auto" or a positive duration like "50ms"');
/** `hedging.delay`: "auto", or a positive duration (one schema, so that an error names both). */
const hedgeDelay = z
  .union(
    [
      z
        .string(hedgeDelayError)
        .regex(new RegExp(`^(?:auto|${DURATION_PATTERN.source.slice(1, -1)})$`), hedgeDelayError)
        .refine((value) => value === "auto" || (tryDurationMs(value) ?? 1) >= 1, hedgeDelayError),
      z.number(hedgeDelayError).int(hedgeDelayError).min(1, hedgeDelayError),
    ],
    hedgeDelayError,
  )
  .describe('"auto", or a duration like "50ms" or an integer number of milliseconds');

const statusError = expected('an HTTP status like 200 or a range like "200-399"');
const expectStatus = z.union(
  [
    z.number(statusError).int(statusError).min(100, statusError).max(599, statusError),
    z.string(statusError).regex(STATUS_RANGE_PATTERN, statusError),
  ],
  statusError,
);

const probePathText = expectedText('a path starting with "/"');
const httpCheck = strict({
  path: z.string(probePathText).regex(/^\//, probePathText).describe("Request path, e.g. /healthz."),
  port: portNumber(1).optional().describe("Fixed port to probe; default: the instance's own port."),
  expectStatus: expectStatus
    .optional()
    .describe('Status that counts as success: a number or a range like "200-399" (the default).'),
});
const tcpCheck = strict({
  port: portNumber(1).optional().describe("Fixed port to connect to; default: the instance's own port."),
});
const execCheck = strict({
  command: nonEmptyString.describe("Program to run; exit status 0 is success."),
  args: z.array(text, expected("a list of strings")).optional(),
});

/** One probe. Exactly one of `http`, `tcp`, `exec` (checked in `probes.ts`). */
export const probeSchema = strict({
  http: httpCheck.optional().describe("HTTP GET; success is an expected status."),
  tcp: tcpCheck.optional().describe("TCP connect; success is an accepted connection."),
  exec: execCheck.optional().describe("Run a command; success is exit status 0."),
  interval: positiveDuration.optional().describe("Time between runs. Default 1s."),
  timeout: positiveDuration.optional().describe("Time before a run fails. Default 1s, at most the interval."),
  failureThreshold: positiveInt.optional().describe("Consecutive failures to fail. Default 3."),
  successThreshold: positiveInt
    .optional()
    .describe("Consecutive successes to pass again. Default 1; must be 1 for startup and liveness."),
  initialDelay: anyDuration.optional().describe("Wait before the first run. Default 0."),
});

const probeEntry = z
  .union([z.literal("off"), probeSchema], expected('a probe mapping or "off"'))
  .describe('A probe, or "off" to disable the default one.');

/** The `probes` mapping of a service or of `defaults`. */
export const probesSchema = strict({
  startup: probeEntry.optional().describe("Gates readiness and liveness until it first passes."),
  readiness: probeEntry.optional().describe("Whether the instance should receive traffic."),
  liveness: probeEntry.optional().describe("Whether the process must be replaced."),
});

const multiplierError = expected("a number ≥ 1");
const jitterError = expected("a number between 0 and 1");
const restartSchema = strict({
  policy: z
    .enum(["always", "on-failure", "never"], expected('one of "always", "on-failure", "never"'))
    .optional()
    .describe("When an exited instance is restarted. Default always."),
  backoff: strict({
    initial: positiveDuration.optional().describe("First restart delay. Default 200ms."),
    max: positiveDuration.optional().describe("Largest restart delay. Default 30s."),
    multiplier: z
      .number(multiplierError)
      .min(1, multiplierError)
      .optional()
      .describe("Delay growth per restart. Default 2."),
    jitter: z
      .number(jitterError)
      .min(0, jitterError)
      .max(1, jitterError)
      .optional()
      .describe("Fraction of the delay randomised either way. Default 0.2."),
  }).optional(),
  crashLoop: strict({
    failures: positiveInt
      .optional()
      .describe("Restarts within the window that mean crash-looping. Default 5."),
    window: positiveDuration.optional().describe("Default 60s."),
  }).optional(),
  stopGracePeriod: anyDuration.optional().describe("SIGTERM, then SIGKILL after this long. Default 5s."),
  resetAfter: positiveDuration.optional().describe("Ready this long resets the slot's backoff. Default 10s."),
});

const factorError = expected("a number ≥ 1");
const percentError = expected("a number between 0 and 100");
const percent = z.number(percentError).min(0, percentError).max(100, percentError);
const ratioError = expected("a number between 0 and 1");
function nonNegativeIntOf(what: string) {
  const error = expected(what);
  return z.number(error).int(error).min(0, error);
}
const nonNegativeInt = nonNegativeIntOf("an integer ≥ 0");
const nonNegativeError = expected("a number ≥ 0");
const nonNegative = z.number(nonNegativeError).min(0, nonNegativeError);
const zoneList = z.array(name, expected("a list of zone names")).min(1, "list at least one zone");

/** The `traffic` fields shared by a service and `defaults` (all but the per-service `weights`). */
const trafficShape = {
  engine: z
    .enum(TRAFFIC_ENGINES, expected(`one of ${TRAFFIC_ENGINES.join(", ")}`))
    .optional()
    .describe(
      "The data plane that moves the bytes: embedded (Homeostat's Node proxy) or haproxy (a managed HAProxy driven through its Runtime API; needs the haproxy binary). Default embedded.",
    ),
  localZone: name
    .optional()
    .describe("Shorthand for priorities [[localZone], [every other zone]]; exclusive with priorities."),
  priorities: z
    .array(zoneList, expected("a list of zone lists, e.g. [[zone-a], [zone-b, zone-c]]"))
    .min(1, "list at least one priority")
    .optional()
    .describe(
      "Zones in priority order; unlisted placement zones form one last priority. Default: one priority with every placement zone.",
    ),
  overprovisioningFactor: z
    .number(factorError)
    .min(1, factorError)
    .optional()
    .describe("A priority at h % healthy keeps min(1, h × factor) of the load. Default 1.4."),
  outlierDetection: strict({
    consecutiveFailures: positiveInt
      .optional()
      .describe("Consecutive 5xx, connect errors, resets or timeouts that eject an instance. Default 5."),
    baseEjectionTime: positiveDuration
      .optional()
      .describe("Ejection lasts base × times ejected. Default 5s."),
    maxEjectionTime: positiveDuration.optional().describe("Longest ejection. Default 5m."),
    maxEjectionPercent: percent
      .optional()
      .describe("Never eject more than this share of the ready instances. Default 50."),
  }).optional(),
  panic: strict({
    threshold: percent
      .optional()
      .describe("Below this percentage of healthy instances the service is in panic. Default 50."),
    mode: z
      .enum(["send-to-all", "fail-closed"], expected('one of "send-to-all", "fail-closed"'))
      .optional()
      .describe("send-to-all ignores ejections in panic; fail-closed keeps them out. Default send-to-all."),
  }).optional(),
  retries: strict({
    attempts: positiveInt
      .optional()
      .describe("Total attempts including the first (1 = no retries). Default 3."),
    perTryTimeout: positiveDuration
      .optional()
      .describe("Deadline of one attempt, at most requestTimeout. Default 2s."),
    backoff: strict({
      initial: positiveDuration.optional().describe("Delay before the first retry. Default 25ms."),
      max: positiveDuration.optional().describe("Largest retry delay. Default 250ms."),
    }).optional(),
    budget: strict({
      ratio: z
        .number(ratioError)
        .min(0, ratioError)
        .max(1, ratioError)
        .optional()
        .describe("Retries allowed per request in the window. Default 0.2."),
      window: positiveDuration.optional().describe("Default 10s."),
      minPerSecond: nonNegative.optional().describe("Retries always allowed per second. Default 5."),
    }).optional(),
  }).optional(),
  limits: strict({
    maxConcurrentPerInstance: positiveInt
      .optional()
      .describe("Hard cap of concurrent requests per instance. Default 100."),
    adaptive: z
      .boolean(expected("true or false"))
      .optional()
      .describe("Adapt the per-instance limit to latency, below the cap. Default true."),
    queueSize: nonNegativeInt
      .optional()
      .describe(
        "Requests that may always wait for admission (more, up to 10×, while the limits serve them within queueTimeout). Default 100.",
      ),
    queueTimeout: anyDuration.optional().describe("How long a request may wait for admission. Default 1s."),
  }).optional(),
  hedging: strict({
    enabled: z
      .boolean(expected("true or false"))
      .optional()
      .describe(
        "Send a second attempt of a slow idempotent request to another instance; the first answer wins. Default true.",
      ),
    delay: hedgeDelay
      .optional()
      .describe(
        'When a hedge is sent: "auto" (the service\'s recent p95 × 1.5, within minDelay..maxDelay) or a fixed duration. Default auto.',
      ),
    minDelay: positiveDuration.optional().describe("Shortest automatic hedge delay. Default 20ms."),
    maxDelay: positiveDuration.optional().describe("Longest automatic hedge delay. Default 1s."),
    maxPerRequest: nonNegativeInt.optional().describe("Hedges one request may send (0: none). Default 1."),
  }).optional(),
  stallDetection: strict({
    enabled: z
      .boolean(expected("true or false"))
      .optional()
      .describe(
        "Stop sending new requests to an instance that stopped answering while its peers answer. Default true.",
      ),
    multiplier: z
      .number(factorError)
      .min(1, factorError)
      .optional()
      .describe("Stalled after answering nothing for max(hedge delay × multiplier, minTime). Default 4."),
    minTime: positiveDuration
      .optional()
      .describe("The shortest silence that counts as a stall. Default 250ms."),
  }).optional(),
  drainTimeout: anyDuration
    .optional()
    .describe("How long a removed instance may finish its in-flight requests. Default 10s."),
  requestTimeout: positiveDuration
    .optional()
    .describe("Whole-request deadline, all attempts included. Default 30s."),
};

const weightError = expected("a number ≥ 0");
/** A service's `traffic` mapping. */
export const trafficSchema = strict({
  ...trafficShape,
  weights: z
    .record(z.string().regex(VERSION_PATTERN), z.number(weightError).min(0, weightError), {
      error: (issue: RawIssue) =>
        issue.code === "invalid_key"
          ? `invalid release version ${describeValue(issue.input)}`
          : `expected a mapping of release versions to weights, got ${describeValue(issue.input)}`,
    })
    .optional()
    .describe(
      "Traffic share per release (any scale, at least one > 0). Default: all to the current release.",
    ),
});

/** The `defaults.traffic` mapping: weights are per service (release keys differ between services). */
export const defaultTrafficSchema = strict(trafficShape);

/** A share between 0 and 1, written `0.01` or `"1%"` (converted by `fraction.ts`). */
const shareError = expected('a fraction between 0 and 1 or a percentage like "1%"');
const share = z
  .union(
    [
      z.number(shareError).min(0, shareError).max(1, shareError),
      z
        .string(shareError)
        .regex(PERCENT_PATTERN, shareError)
        // A string the pattern rejected is reported once, by the pattern.
        .refine((value) => (tryFraction(value) ?? 0) <= 1, shareError),
    ],
    shareError,
  )
  .describe('A fraction 0..1 (0.01) or a percentage ("1%").');

/** A reference version (secrets): a string, or an integer that is stored as its decimal string. */
const referenceVersionError = expected('a version string, e.g. "3"');
const referenceVersion = z.union(
  [
    z.string(referenceVersionError).min(1, referenceVersionError),
    z.number(referenceVersionError).int(referenceVersionError).min(0, referenceVersionError),
  ],
  expectedText('a version string, e.g. "3"'),
);

/** A semver range over schema or API versions, e.g. `">=5 <7"` or `"^2"`; an integer `5` means `"5"`. */
const rangeError = expected('a semver range like ">=5 <7" or "^2"');
const semverRange = z
  .union(
    [
      z
        .string(rangeError)
        .min(1, rangeError)
        .refine((value) => validRange(value) !== null, rangeError),
      z.number(rangeError).int(rangeError).min(0, rangeError),
    ],
    rangeError,
  )
  .describe('A semver range (">=5 <7", "^2", "~1.4"); schema version N reads as N.0.0.');

const apiVersionText = (issue: RawIssue) => {
  const input = issue.input;
  const cleaned = typeof input === "string" ? validSemver(input) : null;
  const hint = cleaned !== null && cleaned !== input ? ` (write "${cleaned}")` : "";
  return `expected a semver version like "2.3.0", got ${describeValue(input)}${hint}`;
};
const apiVersion = z
  .string({ error: apiVersionText })
  .refine((value) => validSemver(value) === value, { error: apiVersionText })
  .describe('The API version this release serves, full semver: "2.3.0".');

const rangeMapError = (what: string, keyRule: string) => (issue: RawIssue) =>
  issue.code === "invalid_key"
    ? `invalid ${what} name ${describeValue(issue.input)}: ${keyRule}`
    : `expected a mapping of ${what} names to semver ranges, got ${describeValue(issue.input)}`;

const schemaVersion = nonNegativeIntOf("a schema version (an integer ≥ 0)");

/** One schema migration a release applies; `to` must be above `from`. */
export const migrationSchema = strict({
  datastore: name.describe("The datastore it changes (declared under datastores)."),
  from: schemaVersion.describe("Schema version it starts from."),
  to: schemaVersion.describe("Schema version it leaves (above from)."),
  reversible: z
    .boolean(expected("true or false"))
    .describe(
      "False when going back needs more than older code (dropped columns, rewritten data). Required: say it.",
    ),
}).superRefine((migration, context) => {
  // Versions that are not integers are reported on their own.
  const { from, to } = migration;
  if (Number.isInteger(from) && Number.isInteger(to) && to <= from) {
    context.addIssue({
      code: "custom",
      path: ["to"],
      input: migration.to,
      message: `migration goes from ${migration.from} to ${migration.to}: to must be above from (migrations only go forward; a rollback is a new migration)`,
    });
  }
});

/** A release's `requires` mapping. */
export const releaseRequiresSchema = strict({
  schemas: z
    .record(z.string().regex(NAME_PATTERN), semverRange, {
      error: rangeMapError("datastore", NAME_RULE),
    })
    .optional()
    .describe("Datastore name → semver range of schema versions this release works with."),
  apis: z
    .record(z.string().regex(NAME_PATTERN), semverRange, { error: rangeMapError("service", NAME_RULE) })
    .optional()
    .describe("Dependency (in dependsOn) → semver range of the API it must serve."),
});

const releaseSchema = strict({
  command: nonEmptyString.describe("Program to run (looked up on PATH)."),
  args: z
    .array(text, expected("a list of strings"))
    .optional()
    .describe("Arguments; {port}, {instance}, {service}, {zone}, {host} are replaced."),
  env: z
    .record(z.string().regex(ENV_NAME_PATTERN), text, {
      error: (issue: RawIssue) =>
        issue.code === "invalid_key"
          ? `invalid environment variable name ${describeValue(issue.input)}`
          : `expected a mapping of names to strings, got ${describeValue(issue.input)}`,
    })
    .optional()
    .describe("Extra environment variables; values are strings (quote numbers)."),
  config: z.unknown().optional().describe("Any value, handed to the process as JSON in HOMEOSTAT_CONFIG."),
  cwd: nonEmptyString.optional().describe("Working directory, relative to the fleet file's directory."),
  secrets: z
    .array(
      strict({
        name: nonEmptyString.describe("Secret name."),
        version: referenceVersion.describe("Secret version the release uses (integers are read as strings)."),
      }),
      expected("a list of { name, version }"),
    )
    .optional()
    .describe("Secret references (never values) the release was built and tested against."),
  requires: releaseRequiresSchema
    .optional()
    .describe("What must hold in the world for this release to work."),
  provides: strict({ api: apiVersion.optional() })
    .optional()
    .describe("What this release serves to its dependents."),
  migrations: z
    .array(migrationSchema, expected("a list of migrations"))
    .optional()
    .describe("Schema migrations this release applies when deployed."),
  policyHash: nonEmptyString
    .optional()
    .describe("The permission-policy hash this release's instances must report (invariants.policyHash)."),
});

const stepError = expected("a traffic percentage between 1 and 100");
/** Deploy steps: increasing percentages of the new release's traffic, ending at 100. */
const deploySteps = z
  .array(
    z.number(stepError).min(1, stepError).max(100, stepError),
    expected("a list of percentages like [10, 50, 100]"),
  )
  .min(1, "list at least one step (the last must be 100)")
  .superRefine((steps, context) => {
    // Out-of-range steps are reported on their own; order is judged between valid ones only.
    if (!steps.every((step) => typeof step === "number" && step >= 1 && step <= 100)) return;
    steps.forEach((step, index) => {
      const previous = steps[index - 1];
      if (
        previous !== undefined &&
        typeof step === "number" &&
        typeof previous === "number" &&
        step <= previous
      ) {
        context.addIssue({
          code: "custom",
          path: [index],
          input: step,
          message: `steps must increase: ${step} comes after ${previous}`,
        });
      }
    });
    const last = steps.at(-1);
    if (typeof last === "number" && last !== 100) {
      context.addIssue({
        code: "custom",
        path: [steps.length - 1],
        input: last,
        message: `the last step must be 100, got ${last}: a deploy ends with the new release taking all traffic`,
      });
    }
  })
  .describe("Traffic percentages of the new release, increasing, the last 100. Default [10, 50, 100].");

const ratioAtLeastOneError = expected("a number ≥ 1");
/** The `deploy` mapping of a service or of `defaults` (merged field by field). */
export const deploySchema = strict({
  steps: deploySteps.optional(),
  stepDuration: positiveDuration
    .optional()
    .describe("How long each step serves before its analysis is judged. Default 30s."),
  stepDeadline: positiveDuration
    .optional()
    .describe(
      "A step without a passing verdict by then aborts the deploy and rolls back; ≥ stepDuration. Default 2m.",
    ),
  soak: anyDuration
    .optional()
    .describe(
      "How long the new release must serve all traffic within its SLO to become proven. Default 10m.",
    ),
  keepStableWarm: z
    .boolean(expected("true or false"))
    .optional()
    .describe(
      "Keep the previous release's instances running, without traffic, until the new one is proven. Default true.",
    ),
  historyLimit: positiveInt.optional().describe("Releases kept in history per service. Default 10."),
  analysis: strict({
    minRequests: positiveInt
      .optional()
      .describe("Fewer requests on either side make the verdict inconclusive, never a pass. Default 50."),
    maxErrorRateIncrease: share
      .optional()
      .describe(
        'Fail when the canary error rate exceeds stable\'s by more than this (absolute). Default "1%".',
      ),
    maxP99Ratio: z
      .number(ratioAtLeastOneError)
      .min(1, ratioAtLeastOneError)
      .optional()
      .describe("Fail when the canary p99 exceeds stable's × this… Default 1.5."),
    minP99Increase: anyDuration
      .optional()
      .describe("…and by at least this much (small absolute jitter is no regression). Default 20ms."),
  })
    .optional()
    .describe("How each step's canary is compared with the stable release."),
});

/** The `slo` mapping of a service or of `defaults` (merged field by field). */
export const sloSchema = strict({
  errorRate: share.optional().describe('Highest acceptable error rate, 0.01 or "1%". Default "1%".'),
  p99: positiveDuration.optional().describe("Highest acceptable p99 latency. Default 1s."),
});

/** A share above 0 and at most 1, written `0.8` or `"80%"`: a threshold that 0 would make meaningless. */
const positiveShareError = expected('a fraction above 0 and at most 1 or a percentage like "80%"');
const positiveShare = z
  .union(
    [
      z.number(positiveShareError).gt(0, positiveShareError).max(1, positiveShareError),
      z
        .string(positiveShareError)
        .regex(PERCENT_PATTERN, positiveShareError)
        // A string the pattern rejected is reported once, by the pattern.
        .refine((value) => {
          const fraction = tryFraction(value);
          return fraction === undefined || (fraction > 0 && fraction <= 1);
        }, positiveShareError),
    ],
    positiveShareError,
  )
  .describe('A fraction above 0 and at most 1 (0.8) or a percentage ("80%").');

const capacityRpsError = expected("a number of requests/s above 0, or null (unknown)");
const capacityConcurrencyError = expected("a positive integer, or null (unknown)");
/** The `capacity` mapping of a service or of `defaults` (merged field by field). */
export const capacitySchema = strict({
  rps: z
    .number(capacityRpsError)
    .gt(0, capacityRpsError)
    .nullable()
    .optional()
    .describe(
      "Requests/s one instance serves at 100 % utilization; null = unknown (no capacity planning). Default null.",
    ),
  concurrency: z
    .number(capacityConcurrencyError)
    .int(capacityConcurrencyError)
    .min(1, capacityConcurrencyError)
    .nullable()
    .optional()
    .describe("Concurrent requests one instance handles at 100 %; null = unknown. Default null."),
  targetUtilization: positiveShare
    .optional()
    .describe('Utilization no instance may be pushed past, 0.8 or "80%". Default "80%".'),
  maxReplicas: positiveInt
    .optional()
    .describe(
      "Most instances of the service (scale-up during failover), replicas..2 × replicas (the reserved ports). Default 2 × replicas.",
    ),
});

const stepPercentError = expected("a percentage between 1 and 100");
/** The top-level `failover` mapping: when a zone is down or degraded, and how traffic moves. */
export const failoverSchema = strict({
  downShare: positiveShare
    .optional()
    .describe('A zone is down when at least this share of its instances is unhealthy. Default "50%".'),
  degradedShare: positiveShare
    .optional()
    .describe('A zone is degraded when at least this share is unhealthy; ≤ downShare. Default "20%".'),
  stepPercent: z
    .number(stepPercentError)
    .min(1, stepPercentError)
    .max(100, stepPercentError)
    .optional()
    .describe("Share of the failed zone's traffic moved per step. Default 25."),
  stepInterval: positiveDuration.optional().describe("Time between two steps. Default 5s."),
  stabilization: anyDuration
    .optional()
    .describe("A recovered zone must stay healthy this long before traffic returns (in steps). Default 30s."),
  minInterval: anyDuration.optional().describe("Minimum time between two automated failovers. Default 5m."),
  confirm: anyDuration
    .optional()
    .describe(
      "A zone must stay down this long before it is evacuated automatically; shorter blips are repaired in place. Default 2s.",
    ),
  automatic: z
    .boolean(expected("true or false"))
    .optional()
    .describe("Evacuate a down zone automatically (else only `homeostat failover`). Default false."),
});

/** A rate limit on automated actions: `max` within any `window`. */
function rateLimitSchema(what: string, defaults: string) {
  return strict({
    max: positiveInt.optional().describe(`Most ${what} within the window. ${defaults}`),
    window: positiveDuration.optional().describe("The sliding window they are counted over."),
  });
}

/** The top-level `brakes` mapping: fleet-wide limits on what automation may do (docs/brakes.md). */
export const brakesSchema = strict({
  blastRadius: positiveShare
    .optional()
    .describe(
      'Largest share of the fleet\'s instances automated actions may act on at once (never less than one instance). Default "25%".',
    ),
  rollbacks: rateLimitSchema("automated rollbacks, all services together,", "Default 3 per 1h.")
    .optional()
    .describe("Automated rollbacks (a deploy's analysis failing); the next one is held."),
  failovers: rateLimitSchema("automated zone evacuations", "Default 2 per 1h.")
    .optional()
    .describe("Automated zone evacuations; the next one is held."),
});

/** The `brakes` mapping of a service or of `defaults` (merged field by field). */
export const serviceBrakesSchema = strict({
  restarts: rateLimitSchema(
    "automated restarts and replacements of the service's instances, every slot together,",
    "Default the larger of 10 and 2 × replicas, per 10m.",
  )
    .optional()
    .describe(
      "Automated restarts of the service, beyond each slot's crash-loop backoff; the next one is held.",
    ),
  blastRadius: positiveShare
    .optional()
    .describe(
      'Largest share of the service\'s instances automated actions may act on at once (never less than one instance). Default "50%".',
    ),
});

const invariantStatusError = expected("an HTTP status from 100 to 599");
const httpMethodError = expected('one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"');
/** The `invariants` mapping of a service or of `defaults`: security properties probed continuously. */
export const invariantsSchema = strict({
  protectedPaths: z
    .array(
      strict({
        path: z.string(probePathText).regex(/^\//, probePathText).describe("Request path, e.g. /admin."),
        method: z
          .enum(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], httpMethodError)
          .optional()
          .describe("Request method. Default GET."),
        expect: z
          .array(
            z
              .number(invariantStatusError)
              .int(invariantStatusError)
              .min(100, invariantStatusError)
              .max(599, invariantStatusError),
            expected("a list of HTTP statuses like [401, 403]"),
          )
          .min(1, "list at least one status")
          .optional()
          .describe("Statuses that mean the request was refused. Default [401, 403]."),
      }),
      expected("a list of { path, method?, expect? }"),
    )
    .optional()
    .describe(
      "Paths that must refuse a request without credentials; replaces defaults.invariants.protectedPaths.",
    ),
  policyHash: strict({
    path: z.string(probePathText).regex(/^\//, probePathText).describe("Request path, e.g. /policy."),
  })
    .optional()
    .describe(
      "An endpoint every instance answers with the same permission-policy hash (text, or JSON { hash }).",
    ),
  interval: positiveDuration.optional().describe("Time between two probe rounds. Default 2s."),
  timeout: positiveDuration
    .optional()
    .describe("Time before one request fails. Default 1s, at most the interval."),
}).superRefine((invariants, context) => {
  // A 2xx or 3xx "refusal" would call a path that lets anonymous requests through protected:
  // the very failure this check exists to catch.
  (invariants.protectedPaths ?? []).forEach((entry, index) => {
    (entry.expect ?? []).forEach((status, at) => {
      if (status < 400) {
        context.addIssue({
          code: "custom",
          path: ["protectedPaths", index, "expect", at],
          input: status,
          message: `${status} is not a refusal: a protected path must answer 4xx or 5xx without credentials (e.g. 401, 403)`,
        });
      }
    });
  });
  const ms = (value: string | number) => (typeof value === "number" ? value : tryDurationMs(value));
  const timeoutMs = invariants.timeout === undefined ? undefined : ms(invariants.timeout);
  const intervalMs = invariants.interval === undefined ? 2_000 : ms(invariants.interval);
  if (timeoutMs !== undefined && intervalMs !== undefined && timeoutMs > intervalMs) {
    context.addIssue({
      code: "custom",
      path: ["timeout"],
      input: invariants.timeout,
      message: `timeout ${timeoutMs}ms is longer than ${invariants.interval === undefined ? "the default interval " : "interval "}${intervalMs}ms: a probe round cannot overlap the next`,
    });
  }
});

const placementSchema = strict({
  zones: z
    .array(name, expected("a list of zone names"))
    .min(1, "list at least one zone")
    .optional()
    .describe("Zones to spread over."),
  hosts: z
    .array(name, expected("a list of host names"))
    .min(1, "list at least one host")
    .optional()
    .describe("Declared hosts to spread over."),
});

/** One service. */
export const serviceSchema = strict({
  replicas: positiveInt.describe("Number of instances."),
  basePort: portNumber(1024).describe(
    "Instance slot i listens on basePort + i; the service reserves basePort .. basePort + 2 × replicas - 1 (two banks for progressive deploys).",
  ),
  port: portNumber(1024).optional().describe("Front port for the service's traffic."),
  placement: placementSchema.optional().describe("Where instances run; default: every declared host."),
  release: nonEmptyString.describe("The key in releases that should be running."),
  releases: namedMap(releaseSchema, {
    keyPattern: VERSION_PATTERN,
    keyRule: 'use letters, digits, ".", "_" and "-", starting with a letter or digit',
    what: "a mapping of versions to releases",
    atLeastOne: "declare at least one release",
  }).describe("Versions of the service, by version key."),
  probes: probesSchema.optional().describe("Overrides defaults.probes, one probe kind at a time."),
  dependsOn: z
    .array(text, expected("a list of service names"))
    .optional()
    .describe("Services that start before this one."),
  restart: restartSchema.optional().describe("Merged field by field over defaults.restart."),
  traffic: trafficSchema
    .optional()
    .describe("Data-plane settings, merged field by field over defaults.traffic; unused without port."),
  deploy: deploySchema
    .optional()
    .describe("Progressive deploy settings, merged field by field over defaults.deploy."),
  slo: sloSchema.optional().describe("What within SLO means (proves releases), merged over defaults.slo."),
  capacity: capacitySchema
    .optional()
    .describe(
      "What one instance can take (capacity planning), merged field by field over defaults.capacity.",
    ),
  invariants: invariantsSchema
    .optional()
    .describe(
      "Security invariants probed on every ready instance, merged field by field over defaults.invariants.",
    ),
  brakes: serviceBrakesSchema
    .optional()
    .describe("Automation brakes of this service, merged field by field over defaults.brakes."),
});

/** The top-level `hosts` mapping. */
export const hostsSchema = namedMap(strict({ zone: name.describe("The failure domain this host is in.") }), {
  keyPattern: NAME_PATTERN,
  keyRule: NAME_RULE,
  what: "a mapping of host names to hosts",
});

/** The top-level `defaults` mapping. */
export const defaultsSchema = strict({
  probes: probesSchema.optional().describe("Probes every service runs unless it overrides them."),
  restart: restartSchema.optional().describe("Restart settings every service starts from."),
  traffic: defaultTrafficSchema.optional().describe("Data-plane settings every service starts from."),
  deploy: deploySchema.optional().describe("Progressive deploy settings every service starts from."),
  slo: sloSchema.optional().describe("The SLO every service starts from."),
  capacity: capacitySchema.optional().describe("Capacity settings every service starts from."),
  invariants: invariantsSchema.optional().describe("Security invariants every service starts from."),
  brakes: serviceBrakesSchema.optional().describe("Automation brakes every service starts from."),
});

/** The top-level `datastores` mapping. */
export const datastoresSchema = namedMap(
  strict({
    initialVersion: schemaVersion
      .optional()
      .describe("Schema version before any migration ran, and when there is no versionCommand. Default 0."),
    versionCommand: strict({
      command: nonEmptyString.describe("Program printing the live schema version (an integer)."),
      args: z.array(text, expected("a list of strings")).optional(),
      cwd: nonEmptyString
        .optional()
        .describe("Working directory, relative to the fleet file's directory (the default)."),
    })
      .optional()
      .describe("How to read the live schema version; without it, Homeostat records it as migrations run."),
  }),
  { keyPattern: NAME_PATTERN, keyRule: NAME_RULE, what: "a mapping of datastore names to datastores" },
);

const reasonText = expectedText("a non-empty reason");
const reason = z
  .string(reasonText)
  .min(1, reasonText)
  .describe("Why, in words people act on (a CVE, an incident).");
const releaseVersionText = expectedText("a release version");
/** The top-level `security` mapping: known-bad facts rollbacks must respect. */
export const securitySchema = strict({
  deniedReleases: z
    .array(
      strict({
        service: name.describe("The service."),
        version: z
          .string(releaseVersionText)
          .regex(VERSION_PATTERN, releaseVersionText)
          .describe("Its release version."),
        reason,
      }),
      expected("a list of { service, version, reason }"),
    )
    .optional()
    .describe("Releases nothing may deploy or roll back to."),
  revokedSecrets: z
    .array(
      strict({
        name: nonEmptyString.describe("Secret name."),
        version: referenceVersion.describe("Revoked version (integers are read as strings)."),
        reason,
      }),
      expected("a list of { name, version, reason }"),
    )
    .optional()
    .describe("Secret versions no release may run with again."),
});

const workersError = expected('"auto" or a whole number from 1 to 64');

/** A whole fleet file. */
export const fleetSchema = strict(
  {
    version: z.literal(1, expected("1 (the only fleet file version)")).describe("Fleet file format: 1."),
    name: nonEmptyString.optional().describe("Fleet name; default: the file's directory name."),
    hosts: hostsSchema.optional().describe("Hosts by name, each in a zone."),
    defaults: defaultsSchema.optional(),
    datastores: datastoresSchema.optional().describe("Datastores whose schema versions releases depend on."),
    security: securitySchema
      .optional()
      .describe("Known-bad releases and secrets that rollbacks must respect."),
    failover: failoverSchema
      .optional()
      .describe("When a zone counts as down or degraded, and how its traffic leaves and returns."),
    brakes: brakesSchema
      .optional()
      .describe("Fleet-wide limits on automated actions: blast radius, rollbacks and failovers per window."),
    dataPlane: strict({
      workers: z
        .union(
          [
            z.literal("auto"),
            z.number(workersError).int(workersError).min(1, workersError).max(64, workersError),
          ],
          workersError,
        )
        .optional()
        .describe(
          "Data-plane processes sharing every service port (SO_REUSEPORT); auto = one per CPU core. Default 1. `up --data-plane-workers` overrides it.",
        ),
    })
      .optional()
      .describe("The data-plane processes that serve the service ports."),
    notifications: notificationsSchema
      .optional()
      .describe("Webhooks told about incidents, rollbacks and failovers (see docs/notifications.md)."),
    services: namedMap(serviceSchema, {
      keyPattern: NAME_PATTERN,
      keyRule: NAME_RULE,
      what: "a mapping of service names to services",
    }).describe("Services by name (may be empty when the fleet declares stores)."),
    stores: storesSchema
      .optional()
      .describe("Replicated stores Homeostat runs and fails over (kind: redis); see docs/redis.md."),
  },
  "a fleet mapping (version, services, ...)",
).refine((fleet) => Object.keys(fleet.services).length > 0 || Object.keys(fleet.stores ?? {}).length > 0, {
  error: "declare at least one service (or a store)",
  path: ["services"],
});

export type FleetInput = z.output<typeof fleetSchema>;
export type ServiceInput = z.output<typeof serviceSchema>;
export type HostsInput = z.output<typeof hostsSchema>;
export type DefaultsInput = z.output<typeof defaultsSchema>;
export type ProbeInput = z.output<typeof probeSchema>;
export type ProbesInput = z.output<typeof probesSchema>;
export type RestartInput = z.output<typeof restartSchema>;
export type TrafficInput = z.output<typeof trafficSchema>;
export type DefaultTrafficInput = z.output<typeof defaultTrafficSchema>;
export type ReleaseInput = z.output<typeof releaseSchema>;
export type DurationValue = z.output<typeof positiveDuration>;
export type DeployInput = z.output<typeof deploySchema>;
export type SloInput = z.output<typeof sloSchema>;
export type CapacityInput = z.output<typeof capacitySchema>;
export type FailoverInput = z.output<typeof failoverSchema>;
export type DatastoresInput = z.output<typeof datastoresSchema>;
export type SecurityInput = z.output<typeof securitySchema>;
export type MigrationInput = z.output<typeof migrationSchema>;
export type InvariantsInput = z.output<typeof invariantsSchema>;
export type BrakesInput = z.output<typeof brakesSchema>;
export type ServiceBrakesInput = z.output<typeof serviceBrakesSchema>;

/** JSON Schema (draft 2020-12) of the fleet file, for editor completion (yaml-language-server). */
export function fleetJsonSchema(): object {
  return {
    ...z.toJSONSchema(fleetSchema, { target: "draft-2020-12", io: "input", unrepresentable: "any" }),
    title: "Homeostat fleet file",
  };
}
