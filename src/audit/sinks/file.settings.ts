import { z } from "zod";
import { required, sizeSchema } from "../../config/primitives.js";
import type { SinkSettings } from "../../plugins/settings-contract.js";

/** What a `type: file` sink says, beside what every sink says. */
export const fileSinkSettings = {
  sink: {
    path: required(z.string().min(1).max(4096), "a 'path' for a file sink"),
    rotate: z
      .strictObject({
        size: sizeSchema.describe("Start a new file when the current one would grow past this"),
        keep: z.number().int().min(1).max(1000).default(5).describe("Rotated files kept (name.1 is newest)"),
      })
      .optional(),
  },
} satisfies SinkSettings;
