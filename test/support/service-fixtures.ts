/**
 * What the services' unit tests share: principals, a compiled configuration, the audit trail and
 * the code a refusal carries. The suites keep their own configurations (each says what it tests).
 */
import { listAuditEvents } from "../../src/audit/audit.repo.js";
import type { AuditEvent } from "../../src/audit/chain.js";
import { loadConfigText } from "../../src/config/load.js";
import type { Db } from "../../src/db/types.js";
import { FirebreakError } from "../../src/errors.js";
import { compilePolicy } from "../../src/policy/engine.js";
import type { Principal } from "../../src/users/user.service.js";

export function person(name: string, groups: string[], roles: Partial<Principal> = {}): Principal {
  return { name, groups, isAdmin: false, isAuditor: false, ...roles };
}

/** The configuration and its compiled policy, as the runtime holds them; throws on a bad file. */
export function compiledRuntime(yaml: string) {
  const loaded = loadConfigText(yaml);
  if (!loaded.ok) throw new Error(`test configuration invalid: ${JSON.stringify(loaded.errors)}`);
  return { config: loaded.config, policy: compilePolicy(loaded.config) };
}

export async function events(db: Db, type?: string): Promise<AuditEvent[]> {
  return listAuditEvents(db, { limit: 1000, ...(type ? { type } : {}) });
}

/** The code of the FirebreakError the promise rejects with; fails when it resolves. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FirebreakError) return error.code;
    throw error;
  }
  throw new Error("expected a refusal");
}
