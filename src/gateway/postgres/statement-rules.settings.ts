import { z } from "zod";

const condition = z.string().min(1).max(4096);
const message = z
  .string()
  .min(1)
  .max(500)
  .optional()
  .describe("What the client is told (SQLSTATE 42501) when this rule refuses a statement");
const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)
  .optional()
  .describe("Names the rule in refusals, transcripts and alerts (default: statements[N])");

/**
 * One statement rule of a PostgreSQL role reached through the gateway: a CEL condition over the
 * parsed statement, the grant's request and its user (see statement-rules.ts). Rules are tried in
 * order; the first whose condition is true decides; when rules exist and none matches, the
 * statement is refused.
 */
export const statementRuleSchema = z.union([
  z.strictObject({
    allow: condition.describe("CEL over statement, request and principal: true lets the statement run"),
    name,
    message,
  }),
  z.strictObject({
    deny: condition.describe("CEL over statement, request and principal: true refuses the statement"),
    name,
    message,
  }),
]);
export type StatementRuleSettings = z.output<typeof statementRuleSchema>;

export const statementRulesSchema = z
  .array(statementRuleSchema)
  .min(1)
  .max(100)
  .describe(
    "Statement rules (gateway access only): the first rule whose condition holds allows or denies; none holding denies",
  );
