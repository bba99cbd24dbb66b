import { z } from "zod";
import { configSchema, isPlannedResourceBranch, RESOURCE_TYPES } from "./schema.js";

export const CONFIG_SCHEMA_ID = "urn:firebreak:config:1";

/**
 * The JSON Schema of `firebreak.yaml`, as `firebreak schema` prints it, for editors to validate
 * and complete the file. It describes the input (durations as text, defaults optional); checks
 * between sections (does this zone exist?) are beyond JSON Schema and run only in the loader.
 */
export function configJsonSchema(): Record<string, unknown> {
  const { $schema: _draft, ...generated } = z.toJSONSchema(configSchema, {
    io: "input",
    unrepresentable: "any",
    // A planned resource type matches nothing, so an editor flags it as `validate` would.
    override: ({ zodSchema, jsonSchema }) => {
      if (!isPlannedResourceBranch(zodSchema)) return;
      for (const key of Object.keys(jsonSchema)) delete (jsonSchema as Record<string, unknown>)[key];
      Object.assign(jsonSchema, {
        description: `Not implemented in this build; resource types are: ${RESOURCE_TYPES.join(", ")}`,
        not: {},
      });
    },
  });
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: CONFIG_SCHEMA_ID,
    title: "Firebreak configuration (firebreak.yaml)",
    description:
      "Zones, resources, flows, standing bindings and break-glass policies for Firebreak. Secrets are references: 'env:NAME' or 'file:/absolute/path'.",
    ...generated,
  };
}
