import { authConfigReply, devicePollReply, deviceStartReply } from "../api/auth.schema.js";
import { FirebreakError } from "../errors.js";
import type { Client } from "./client.js";
import { safeText } from "./format.js";

export interface DeviceLoginResult {
  user: string;
  groups: string[];
  token: string;
  expiresAt: string;
}

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `firebreak login` without a token: the server brokers a device sign-in at the identity provider
 * (so the CLI needs no client secret), the person confirms the code in any browser, and the CLI
 * polls the server at the pace the provider sets until it hands over a session token.
 */
export async function deviceLogin(deps: {
  client: Client;
  /** Tells the person what to open and which code to confirm. */
  instruct: (text: string, start: { verificationUri: string; userCode: string }) => void;
  sleep?: (ms: number) => Promise<void>;
}): Promise<DeviceLoginResult> {
  const sleep = deps.sleep ?? sleepFor;
  const config = await deps.client.get("/v1/auth/config", authConfigReply);
  if (!config.oidc.enabled) {
    throw new FirebreakError(
      "OIDC_NOT_CONFIGURED",
      `${deps.client.url} has no OIDC sign-in configured; use 'firebreak login --token <token>' with a token from an administrator`,
    );
  }
  const started = await deps.client.post("/v1/auth/oidc/device/start", {}, deviceStartReply);
  const open = started.verificationUriComplete ?? started.verificationUri;
  deps.instruct(
    `To sign in, open this address in a browser:\n\n  ${safeText(open)}\n\nand check that it shows the code ${safeText(started.userCode)}. Waiting (until ${safeText(started.expiresAt)})…`,
    { verificationUri: open, userCode: started.userCode },
  );
  let interval = Math.max(1, started.interval);
  for (;;) {
    await sleep(interval * 1000);
    const polled = await deps.client.post(
      "/v1/auth/oidc/device/poll",
      { handle: started.handle },
      devicePollReply,
    );
    if (polled.status === "complete") return polled;
    interval = Math.max(interval, polled.interval);
  }
}
