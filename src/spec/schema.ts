/**
 * The YAML surface of a fleet file as zod schemas. They check shape and single values only
 * (types, ranges, unknown keys); rules that relate several values live in `checks.ts`, and
 * defaults are applied in `resolve.ts`, so that the parsed value still says what the file said
 * (needed to merge service settings over `defaults` field by field).
 */
import { z } from "zod";
import { describeValue } from "./describeValue.ts";
import { DURATION_PATTERN, tryDurationMs } from "./duration.ts";

/** Service, host and zone names. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;
/** Release version keys. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STATUS_RANGE_PATTERN = /^[1-5]\d\d(-[1-5]\d\d)?$/;

/** Marks the raw zod issue of a strict object with its known keys, for "did you mean". */
export interface UnknownKeysIssueExtra {
  knownKeys?: string[];
}

type RawIssue = z.core.$ZodRawIssue;

/** An error option whose message is `expected <what>, got <the value>`. */
function expected(what: string) {
  return { error: (issue: RawIssue) => `expected ${what}, got ${describeValue(issue.input)}` };
}

/** Like {@link expected}, with a hint to quote scalars that YAML read as numbers or booleans. */
function expectedText(what: string) {
  return {
    error: (issue: RawIssue) => {
      const input = issue.input;
      const hint =
        typeof input === "number" || typeof input === "boolean" ? ` (quote it: "${String(input)}")` : "";
      return `expected ${what}, got ${describeValue(input)}${hint}`;
    },
  };
}

/** A mapping that rejects unknown keys, each reported with a suggestion. */
function strict<Shape extends z.core.$ZodLooseShape>(shape: Shape, what = "a mapping") {
  const knownKeys = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue: RawIssue) => {
      if (issue.code === "unrecognized_keys") {
        (issue as RawIssue & UnknownKeysIssueExtra).knownKeys = knownKeys;
        return "unknown key";
      }
      return `expected ${what}, got ${describeValue(issue.input)}`;
    },
  });
}

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

const statusError = expected('an HTTP status like 200 or a range like "200-399"');
const expectStatus = z.union(
  [
    z.number(statusError).int(statusError).min(100, statusError).max(599, statusError),
    z.string(statusError).regex(STATUS_RANGE_PATTERN, statusError),
  ],
  statusError,
);

const httpCheck = strict({
  path: z
    .string(expectedText('a path starting with "/"'))
    .startsWith("/", expectedText('a path starting with "/"')),
  port: portNumber(1).optional(),
  expectStatus: expectStatus.optional(),
});
const tcpCheck = strict({ port: portNumber(1).optional() });
const execCheck = strict({
  command: nonEmptyString,
  args: z.array(text, expected("a list of strings")).optional(),
});

/** One probe. Exactly one of `http`, `tcp`, `exec` (checked in `checks.ts`). */
export const probeSchema = strict({
  http: httpCheck.optional(),
  tcp: tcpCheck.optional(),
  exec: execCheck.optional(),
  interval: positiveDuration.optional(),
  timeout: positiveDuration.optional(),
  failureThreshold: positiveInt.optional(),
  successThreshold: positiveInt.optional(),
  initialDelay: anyDuration.optional(),
});

const probeEntry = z.union([z.literal("off"), probeSchema], expected('a probe mapping or "off"'));

/** The `probes` mapping of a service or of `defaults`. */
export const probesSchema = strict({
  startup: probeEntry.optional(),
  readiness: probeEntry.optional(),
  liveness: probeEntry.optional(),
});

const restartSchema = strict({
  policy: z
    .enum(["always", "on-failure", "never"], expected('one of "always", "on-failure", "never"'))
    .optional(),
  backoff: strict({
    initial: positiveDuration.optional(),
    max: positiveDuration.optional(),
    multiplier: z.number(expected("a number ≥ 1")).min(1, expected("a number ≥ 1")).optional(),
    jitter: z
      .number(expected("a number between 0 and 1"))
      .min(0, expected("a number between 0 and 1"))
      .max(1, expected("a number between 0 and 1"))
      .optional(),
  }).optional(),
  crashLoop: strict({ failures: positiveInt.optional(), window: positiveDuration.optional() }).optional(),
  stopGracePeriod: anyDuration.optional(),
  resetAfter: positiveDuration.optional(),
});

const releaseSchema = strict({
  command: nonEmptyString,
  args: z.array(text, expected("a list of strings")).optional(),
  env: z
    .record(z.string().regex(ENV_NAME_PATTERN), text, {
      error: (issue: RawIssue) =>
        issue.code === "invalid_key"
          ? `invalid environment variable name ${describeValue(issue.input)}`
          : `expected a mapping of names to strings, got ${describeValue(issue.input)}`,
    })
    .optional(),
  config: z.unknown().optional(),
  cwd: nonEmptyString.optional(),
});

const placementSchema = strict({
  zones: z.array(name, expected("a list of zone names")).min(1, "list at least one zone").optional(),
  hosts: z.array(name, expected("a list of host names")).min(1, "list at least one host").optional(),
});

/** One service. */
export const serviceSchema = strict({
  replicas: positiveInt,
  basePort: portNumber(1024),
  port: portNumber(1024).optional(),
  placement: placementSchema.optional(),
  release: nonEmptyString,
  releases: namedMap(releaseSchema, {
    keyPattern: VERSION_PATTERN,
    keyRule: 'use letters, digits, ".", "_" and "-", starting with a letter or digit',
    what: "a mapping of versions to releases",
    atLeastOne: "declare at least one release",
  }),
  probes: probesSchema.optional(),
  dependsOn: z.array(text, expected("a list of service names")).optional(),
  restart: restartSchema.optional(),
});

/** The top-level `hosts` mapping. */
export const hostsSchema = namedMap(strict({ zone: name }), {
  keyPattern: NAME_PATTERN,
  keyRule: NAME_RULE,
  what: "a mapping of host names to hosts",
});

/** The top-level `defaults` mapping. */
export const defaultsSchema = strict({ probes: probesSchema.optional(), restart: restartSchema.optional() });

/** A whole fleet file. */
export const fleetSchema = strict(
  {
    version: z.literal(1, expected("1 (the only fleet file version)")),
    name: nonEmptyString.optional(),
    hosts: hostsSchema.optional(),
    defaults: defaultsSchema.optional(),
    services: namedMap(serviceSchema, {
      keyPattern: NAME_PATTERN,
      keyRule: NAME_RULE,
      what: "a mapping of service names to services",
      atLeastOne: "declare at least one service",
    }),
  },
  "a fleet mapping (version, services, ...)",
);

export type FleetInput = z.output<typeof fleetSchema>;
export type ServiceInput = z.output<typeof serviceSchema>;
export type HostsInput = z.output<typeof hostsSchema>;
export type DefaultsInput = z.output<typeof defaultsSchema>;
export type ProbeInput = z.output<typeof probeSchema>;
export type ProbesInput = z.output<typeof probesSchema>;
export type RestartInput = z.output<typeof restartSchema>;
export type ReleaseInput = z.output<typeof releaseSchema>;
export type DurationValue = z.output<typeof positiveDuration>;

/** JSON Schema (draft 2020-12) of the fleet file, for editor completion (yaml-language-server). */
export function fleetJsonSchema(): object {
  return {
    ...z.toJSONSchema(fleetSchema, { target: "draft-2020-12", io: "input", unrepresentable: "any" }),
    title: "Homeostat fleet file",
  };
}
