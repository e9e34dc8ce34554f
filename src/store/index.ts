/** The state store: Homeostat's durable memory in `<stateDir>/state.db`. */

export { type AuditEntry, AuditLog, type AuditRecord } from "./audit.ts";
export {
  type Claim,
  type Claimant,
  fenced,
  LeadershipStore,
  type Lease,
  STOPPED_HOLDER,
} from "./leadership.ts";
export {
  applicationId,
  HOMEOSTAT_APPLICATION_ID,
  LATEST_VERSION,
  MIGRATIONS,
  type Migration,
  migrate,
  userVersion,
} from "./migrations.ts";
export type * from "./records.ts";
export {
  type RevisionState,
  recordFirstRevision,
  type SpecRevision,
  SpecRevisions,
  specContentHash,
} from "./specRevisions.ts";
export { checkStateFile } from "./stateFile.ts";
export { STATE_FILE_NAME, StateStore, type StoreChange, type StoreListener } from "./stateStore.ts";
export { type TokenRecord, type TokenRole, TokenStore } from "./tokens.ts";
