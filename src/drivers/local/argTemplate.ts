/**
 * Placeholder substitution for a release's arguments: `{port}`, `{instance}`, `{service}`,
 * `{zone}` and `{host}` become the values of the instance being launched.
 */

import type { InstanceLaunch } from "../driver.ts";

/** The values a launch offers to templates, by placeholder name. */
export interface LaunchVariables {
  port: string;
  instance: string;
  service: string;
  zone: string;
  host: string;
}

const PLACEHOLDER = /\{(port|instance|service|zone|host)\}/g;

/** The placeholder values of one launch. */
export function launchVariables(launch: InstanceLaunch): LaunchVariables {
  return {
    port: String(launch.port),
    instance: launch.instance,
    service: launch.service,
    zone: launch.placement.zone,
    host: launch.placement.host,
  };
}

/**
 * Substitute every known placeholder in `template`. Unknown `{words}` are left as they are: a
 * release may legitimately pass braces to its program (JSON, shell snippets).
 */
export function renderTemplate(template: string, variables: LaunchVariables): string {
  return template.replace(PLACEHOLDER, (_match, name: keyof LaunchVariables) => variables[name]);
}

/** The release's arguments with placeholders substituted. */
export function renderArgs(args: readonly string[], variables: LaunchVariables): string[] {
  return args.map((arg) => renderTemplate(arg, variables));
}
