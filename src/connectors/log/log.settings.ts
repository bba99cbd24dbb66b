import type { z } from "zod";
import type { ResourceSettings } from "../../plugins/settings-contract.js";

type Intersection<Union> = (Union extends unknown ? (whole: Union) => void : never) extends (
  whole: infer All,
) => void
  ? All
  : never;

/**
 * The log connector issues nothing and records what a role says, so a `type: log` resource stands
 * in for any other: it accepts every key some other connector's resources and roles accept, each
 * validated as that connector validates it (the first connector to declare a key decides).
 */
export function logResourceSettings<Others extends Record<string, ResourceSettings>>(others: Others) {
  const merge = (shapes: readonly z.ZodRawShape[]) => {
    const merged: Record<string, z.ZodRawShape[string]> = {};
    for (const shape of shapes)
      for (const [key, schema] of Object.entries(shape)) if (!(key in merged)) merged[key] = schema;
    return merged;
  };
  const all = Object.values(others);
  return {
    resource: merge(all.map((settings) => settings.resource)) as Intersection<
      Others[keyof Others]["resource"]
    >,
    role: merge(all.map((settings) => settings.role)) as Intersection<Others[keyof Others]["role"]>,
  };
}
