import { z } from "zod";
import { parseDuration } from "../config/duration.js";
import { DURATION_HINT, DURATION_PATTERN } from "../config/patterns.js";
import { ID_PATTERN } from "../shared/id-pattern.js";

/**
 * Pieces the area schemas share. Everything under src/api is the one API contract: the routes
 * validate with it and describe it in OpenAPI, the CLI parses replies with it, and the console
 * imports its types. It imports only zod and pure helpers, so the console can type-check it
 * without Node's types and the CLI can load it without server code.
 */

/** `{ id }` path parameters of one kind of id, with a hint naming it. */
export const idParams = (hint: string) => z.object({ id: z.string().regex(ID_PATTERN, hint) });

/** `30m`, `1h`: a duration as written in the configuration, read as milliseconds. */
export const durationText = z
  .string()
  .regex(DURATION_PATTERN, DURATION_HINT)
  .transform((text) => parseDuration(text));

/** `true` / `false` in a query string. */
export const queryFlag = z.enum(["true", "false"]);
