import { generateKeyPairSync } from "node:crypto";
import { expect } from "vitest";
import { expectStatus, REASON, startTestApp, TEST_CONFIG, type TestApp } from "../../support/app.js";
import type { TestDialect } from "../../support/databases.js";
import { writeTemporaryFile } from "./receivers.js";

/** An Ed25519 key pair for checkpoints, with the private key in a file `audit.signingKey` can name. */
export function createSigningKeyFiles() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const publicPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  return {
    privatePem,
    publicPem,
    privatePath: writeTemporaryFile("audit-ed25519.pem", privatePem),
    publicPath: writeTemporaryFile("audit-ed25519.pub.pem", publicPem),
  };
}

export const PUBLIC_URL = "https://firebreak.example.test";

/**
 * The end-to-end configuration with an `audit` section (sinks given as YAML flow mappings, one per
 * entry) and a public URL for console links.
 */
export function streamConfig(options: {
  sinks: string[];
  signingKeyPath?: string;
  extra?: string;
  server?: string;
}): string {
  return `${TEST_CONFIG}
server:
  publicUrl: ${PUBLIC_URL}
${options.server ?? ""}audit:
${options.signingKeyPath ? `  signingKey: file:${options.signingKeyPath}\n` : ""}${options.extra ?? ""}  sinks:
${options.sinks.map((sink) => `    - ${sink}`).join("\n")}
`;
}

export async function startStreamApp(dialect: TestDialect, config: string): Promise<TestApp> {
  return startTestApp(dialect, { config });
}

/**
 * One break-glass use from start to finish, producing every kind of context an analyst needs:
 * incident, request with ticket and purpose from the bastion, approval by carol, activation,
 * issued credential and opened path, revoke with a reason, verified revocation, review by erin,
 * and a denied request with its reasons.
 */
export async function runBreakGlass(t: TestApp, ticket = "INC-4711") {
  expectStatus(
    await t.call("POST", "/v1/incidents", {
      body: { id: ticket, zone: "vault", severity: 2, title: "primary database down", status: "open" },
    }),
    201,
  );
  const created = await t.call("POST", "/v1/requests", {
    as: "alice",
    body: { zone: "vault", role: "admin", reason: REASON, ticket },
  });
  expectStatus(created, 201);
  const requestId: string = created.body.id;
  expectStatus(
    await t.call("POST", `/v1/requests/${requestId}/approve`, { as: "carol", body: { comment: "go ahead" } }),
    200,
  );
  const activated = await t.call("POST", `/v1/requests/${requestId}/activate`, { as: "alice" });
  expectStatus(activated, 201);
  const grantId: string = activated.body.id;
  expectStatus(
    await t.call("POST", `/v1/grants/${grantId}/revoke`, {
      as: "admin",
      body: { reason: "work finished early" },
    }),
    200,
  );
  expectStatus(
    await t.call("POST", `/v1/grants/${grantId}/review`, {
      as: "erin",
      body: { verdict: "accept", notes: `failover only, as described in ${ticket}` },
    }),
    200,
  );
  // frank is not eligible: a decision.denied with reasons.
  const denied = await t.call("POST", "/v1/requests", {
    as: "frank",
    body: { zone: "vault", role: "admin", reason: REASON, ticket },
  });
  expect(denied.status).toBe(403);
  return { requestId, grantId };
}
