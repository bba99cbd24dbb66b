import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import YAML from "yaml";
import {
  auditEvents,
  createMariaFixture,
  DIRECTORY,
  dropMariaAccounts,
  type JitServer,
  MARIADB_ADMIN_URL,
  type MariaFixture,
  mariaAccounts,
  startJitServer,
  uniqueTag,
  waitFor,
} from "../support/jit.js";
import { killAllProcesses } from "../support/process.js";

/**
 * kill -9 during a drill (issue 16.4): the drill's login goes to an address that accepts and never
 * answers, so the process is killed while the issued MariaDB account exists. After the restart
 * the account is gone, the run is recorded abandoned and the alert is raised.
 */
vi.setConfig({ testTimeout: 90_000, hookTimeout: 90_000 });
afterAll(killAllProcesses);

const tag = uniqueTag();
const PREFIX = `dk${tag}_`;
let fixture: MariaFixture;
let silent: Server;
const sockets = new Set<Socket>();
let server: JitServer | null = null;

beforeAll(async () => {
  fixture = await createMariaFixture(tag);
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
});

afterAll(async () => {
  await server?.close();
  for (const socket of sockets) socket.destroy();
  silent.close();
  await dropMariaAccounts(PREFIX).catch(() => {});
  await fixture?.drop().catch(() => {});
});

describe("a drill killed mid-way", () => {
  it("leaves nothing behind after the restart", async () => {
    const port = (silent.address() as { port: number }).port;
    server = await startJitServer(
      YAML.stringify({
        version: 1,
        directory: DIRECTORY,
        zones: { bastion: { cidrs: ["127.0.0.0/8"] }, crash: {} },
        resources: {
          "crash-maria": {
            zone: "crash",
            type: "mariadb",
            // Logins are pointed here (a listener that never answers); the admin URL issues.
            address: `127.0.0.1:${port}`,
            connection: {
              url: MARIADB_ADMIN_URL,
              controlDatabase: fixture.control,
              database: fixture.database,
            },
            namePrefix: PREFIX,
            roles: { admin: { grants: [fixture.reader] } },
          },
        },
        breakGlass: [
          {
            name: "crash-emergency",
            zone: "crash",
            roles: ["admin"],
            eligible: ["group:sre"],
            duration: { default: "15m", max: "1h" },
          },
        ],
        drills: [
          {
            name: "crash-drill",
            policy: "crash-emergency",
            resource: "crash-maria",
            role: "admin",
            every: "7d",
            grantFor: "1h",
          },
        ],
      }),
    );
    const running = server.admin.call("POST", "/v1/drills/crash-drill/run").catch((error: unknown) => error);
    await waitFor(async () => (await mariaAccounts(PREFIX)).length === 1, {
      timeoutMs: 20_000,
      what: "the drill's account",
    });
    await server.kill();
    await running;
    expect(await mariaAccounts(PREFIX)).toHaveLength(1);

    await server.start();
    // Closed at start, before the server answered ready; not an hour later at the grant's end.
    expect(await mariaAccounts(PREFIX)).toEqual([]);
    const events = await auditEvents(server);
    const completed = events.filter((e) => e.type === "drill.completed");
    expect(completed.map((e) => e.context.outcome)).toEqual(["abandoned"]);
    const alert = events.find((e) => e.type === "alert.raised" && e.context.alert === "drill-failed");
    expect(alert?.context.step).toBe("process");
    const grantId = completed[0]?.context.grant as string;
    expect(events.some((e) => e.type === "revocation.verified" && e.subject === grantId)).toBe(true);
    const drills = await server.admin.ok("GET", "/v1/drills");
    expect(drills.drills[0].last.outcome).toBe("abandoned");
  });
});
