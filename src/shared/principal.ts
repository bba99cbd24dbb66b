/**
 * Who is asking, as every layer names them: a user (or service account) with their groups as of
 * now and their standing roles. Resolved by the user service; read by routes, services and policy.
 */
export interface Principal {
  name: string;
  groups: string[];
  isAdmin: boolean;
  isAuditor: boolean;
}
