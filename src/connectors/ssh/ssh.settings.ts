import { z } from "zod";
import type { ResourceSettings } from "../../plugins/settings-contract.js";
import { PRINCIPAL_PATTERN } from "./ssh-input.js";

/** What a `type: ssh` resource's roles say; the resource itself needs nothing beyond what every resource has. */
export const sshResourceSettings = {
  resource: {},
  role: {
    /** The principals the certificate names (the accounts it may log in as). */
    principals: z
      .array(
        z
          .string()
          .min(1)
          .max(63)
          .regex(PRINCIPAL_PATTERN, "an SSH principal of lowercase letters, digits, '_', '.' or '-'"),
      )
      .optional(),
    /** The certificate permits port and agent forwarding (default: it does not). */
    allowForwarding: z.boolean().optional(),
  },
} satisfies ResourceSettings;
