/**
 * The dashboard's actions (deploy, rollback, failover, failback): what one asks before it runs,
 * and what it becomes once the API has answered. The views describe an action; the shell confirms
 * it and runs it, so every action goes through the same dialog and the same message.
 */

import { type Api, ApiError } from "./api.ts";

/** What an action asks before it runs. */
export interface PendingAction {
  title: string;
  description: string;
  method: "POST";
  path: string;
  body: Record<string, unknown>;
  /** A reason field (sent as `reason`). */
  reason: boolean;
  /** An admin-only checkbox that overrides the safety checks (`force` or `override`). */
  forceField?: "force" | "override";
  confirm: string;
}

/** How a view asks for an action: the shell confirms it first. */
export type Ask = (action: PendingAction) => void;

/** What the API said to an action, in a line for the user. */
export interface Outcome {
  ok: boolean;
  text: string;
}

/**
 * Runs a confirmed action with the reason and override the user gave, and says how it went: a
 * refusal carries the API's status, code and message as is, so the user reads what the CLI would.
 */
export async function runAction(
  api: Api,
  action: PendingAction,
  reason: string,
  force: boolean,
): Promise<Outcome> {
  const body: Record<string, unknown> = { ...action.body };
  if (action.reason && reason !== "") body.reason = reason;
  if (action.forceField !== undefined && force) body[action.forceField] = true;
  try {
    await api.call(action.method, action.path, body);
    return { ok: true, text: `${action.title}: accepted.` };
  } catch (error) {
    const text =
      error instanceof ApiError
        ? `${action.title}: refused (${error.status} ${error.code}): ${error.message}`
        : `${action.title}: failed: ${error instanceof Error ? error.message : String(error)}`;
    return { ok: false, text };
  }
}
