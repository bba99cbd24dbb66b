import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { promisify } from "node:util";

/**
 * A small network made of Linux network namespaces, for the nftables test and benchmark: one
 * router namespace, and one namespace per zone joined to it by a veth pair, each with an address
 * in the zone's own /24. The router forwards between zones, so an nftables table loaded in the
 * router namespace decides what passes. Names and addresses are unique per lab; `destroy` removes
 * the namespaces (and with them the veths and any nftables table inside) and is safe to repeat.
 * Needs root, `ip` (iproute2) and `nft`.
 */

const run = promisify(execFile);

export interface LabZone {
  readonly name: string;
  readonly netns: string;
  readonly cidr: string;
  /** The zone host's address (its end of the veth). */
  readonly host: string;
  /** The router's address in this zone (the zone host's default gateway). */
  readonly gateway: string;
}

export interface Lab {
  readonly id: string;
  readonly router: string;
  readonly zones: ReadonlyMap<string, LabZone>;
  zone(name: string): LabZone;
  /** Runs a command inside a namespace. */
  exec(netns: string, argv: readonly string[]): Promise<string>;
  /** Processes started in the lab; killed by `destroy`. */
  readonly children: Set<ChildProcess>;
  destroy(): Promise<void>;
}

const live = new Set<Lab>();
let hooked = false;

/** True when this process can build labs (root, with `ip` and `nft`). */
export async function canBuildLabs(): Promise<boolean> {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return false;
  try {
    await run("ip", ["-V"]);
    await run("nft", ["--version"]);
    return true;
  } catch {
    return false;
  }
}

export async function createLab(zoneNames: readonly string[]): Promise<Lab> {
  if (zoneNames.length > 200) throw new Error("a lab has at most 200 zones");
  const id = randomBytes(3).toString("hex");
  // 10.64.0.0 - 10.127.255.255 for labs: only ever inside the lab's own namespaces.
  const second = randomInt(64, 128);
  const third = randomInt(0, 256 - zoneNames.length);
  const router = `fb-${id}-r`;
  const zones = new Map<string, LabZone>();
  zoneNames.forEach((name, index) => {
    const prefix = `10.${second}.${third + index}`;
    zones.set(name, {
      name,
      netns: `fb-${id}-z${index}`,
      cidr: `${prefix}.0/24`,
      host: `${prefix}.2`,
      gateway: `${prefix}.1`,
    });
  });
  const created: string[] = [];
  const lab: Lab = {
    id,
    router,
    zones,
    children: new Set(),
    zone(name) {
      const zone = zones.get(name);
      if (!zone) throw new Error(`no zone ${name} in lab ${id}`);
      return zone;
    },
    async exec(netns, argv) {
      const { stdout } = await run("ip", ["netns", "exec", netns, ...argv]);
      return stdout;
    },
    async destroy() {
      live.delete(lab);
      for (const child of lab.children) child.kill("SIGKILL");
      for (const netns of created.splice(0).reverse())
        await run("ip", ["netns", "del", netns]).catch(() => {});
    },
  };
  live.add(lab);
  if (!hooked) {
    hooked = true;
    // A failed or interrupted run still removes its namespaces.
    process.once("exit", () => {
      for (const each of live) {
        for (const child of each.children) child.kill("SIGKILL");
        for (const netns of [each.router, ...[...each.zones.values()].map((z) => z.netns)]) {
          try {
            execFileSync("ip", ["netns", "del", netns], { stdio: "ignore" });
          } catch {
            // already gone
          }
        }
      }
    });
  }
  try {
    await run("ip", ["netns", "add", router]);
    created.push(router);
    await run("ip", ["-n", router, "link", "set", "lo", "up"]);
    await lab.exec(router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let index = 0;
    for (const zone of zones.values()) {
      await run("ip", ["netns", "add", zone.netns]);
      created.push(zone.netns);
      const outside = `fb${id}r${index}`;
      const inside = `fb${id}z${index}`;
      await run("ip", [
        "-n",
        router,
        "link",
        "add",
        outside,
        "type",
        "veth",
        "peer",
        "name",
        inside,
        "netns",
        zone.netns,
      ]);
      await run("ip", ["-n", router, "addr", "add", `${zone.gateway}/24`, "dev", outside]);
      await run("ip", ["-n", router, "link", "set", outside, "up"]);
      await run("ip", ["-n", zone.netns, "link", "set", "lo", "up"]);
      await run("ip", ["-n", zone.netns, "addr", "add", `${zone.host}/24`, "dev", inside]);
      await run("ip", ["-n", zone.netns, "link", "set", inside, "up"]);
      await run("ip", ["-n", zone.netns, "route", "add", "default", "via", zone.gateway]);
      index++;
    }
  } catch (error) {
    await lab.destroy();
    throw error;
  }
  return lab;
}

const SERVER_SCRIPT = `
const net = require("node:net");
const server = net.createServer((socket) => { socket.on("data", (d) => socket.write(d)); socket.on("error", () => {}); });
server.listen(Number(process.argv[1]), "0.0.0.0", () => process.stdout.write("listening\\n"));
`;

const CONNECT_SCRIPT = `
const net = require("node:net");
const [host, port, timeout] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const socket = net.connect({ host, port });
const done = (result) => { process.stdout.write(JSON.stringify(result) + "\\n"); socket.destroy(); process.exit(0); };
const timer = setTimeout(() => done({ ok: false, error: "timeout" }), timeout);
socket.on("connect", () => socket.write("ping"));
socket.on("data", () => { clearTimeout(timer); done({ ok: true }); });
socket.on("error", (e) => { clearTimeout(timer); done({ ok: false, error: e.code || e.message }); });
`;

const HOLD_SCRIPT = `
const net = require("node:net");
const [host, port, every] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const say = (o) => process.stdout.write(JSON.stringify({ at: Date.now(), ...o }) + "\\n");
const socket = net.connect({ host, port });
let timer = null; let sent = 0; let echoed = 0;
socket.on("connect", () => { say({ event: "connected" }); timer = setInterval(() => { sent++; socket.write("x"); }, every); });
socket.on("data", (d) => { echoed += d.length; say({ event: "echo", sent, echoed }); });
socket.on("error", (e) => { say({ event: "error", error: e.code || e.message, sent, echoed }); clearInterval(timer); process.exit(0); });
socket.on("close", () => { say({ event: "closed", sent, echoed }); clearInterval(timer); process.exit(0); });
`;

/** Starts a TCP echo server in a namespace; resolves once it listens. */
export async function startEchoServer(lab: Lab, netns: string, port: number): Promise<{ stop(): void }> {
  const child = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", SERVER_SCRIPT, String(port)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  track(lab, child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`echo server exited with ${code}`)));
  });
  return { stop: () => child.kill("SIGKILL") };
}

/** One TCP connection attempt from a namespace: did a byte make the round trip within the time? */
export async function tryConnect(
  netns: string,
  host: string,
  port: number,
  timeoutMs = 1500,
): Promise<{ ok: boolean; error?: string }> {
  const { stdout } = await run("ip", [
    "netns",
    "exec",
    netns,
    process.execPath,
    "-e",
    CONNECT_SCRIPT,
    host,
    String(port),
    String(timeoutMs),
  ]);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { ok: boolean; error?: string };
}

export interface HeldConnection {
  /** Events so far: connected, echo, error, closed, each with the wall-clock time it happened. */
  readonly events: { at: number; event: string; error?: string; sent?: number; echoed?: number }[];
  connected(): Promise<void>;
  /** Resolves with the event that ended the connection (a reset, or a close). */
  ended(): Promise<{ at: number; event: string; error?: string }>;
  /** The time of the last echo received. */
  lastEcho(): number | null;
  stop(): void;
}

/** Opens a TCP connection from a namespace and keeps sending a byte every `everyMs`, recording what happens. */
export function holdConnection(
  lab: Lab,
  netns: string,
  host: string,
  port: number,
  everyMs = 10,
): HeldConnection {
  const child = spawn(
    "ip",
    ["netns", "exec", netns, process.execPath, "-e", HOLD_SCRIPT, host, String(port), String(everyMs)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  track(lab, child);
  const events: HeldConnection["events"] = [];
  const listeners = new Set<() => void>();
  let buffer = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      events.push(JSON.parse(buffer.slice(0, newline)));
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
    }
    for (const listener of [...listeners]) listener();
  });
  const waitFor = <T>(pick: () => T | undefined): Promise<T> =>
    new Promise((resolve) => {
      const check = () => {
        const found = pick();
        if (found !== undefined) {
          listeners.delete(check);
          resolve(found);
        }
      };
      listeners.add(check);
      check();
    });
  return {
    events,
    connected: () =>
      waitFor(() => (events.some((e) => e.event === "echo") ? true : undefined)).then(() => {}),
    ended: () => waitFor(() => events.find((e) => e.event === "error" || e.event === "closed")),
    lastEcho: () => events.filter((e) => e.event === "echo").at(-1)?.at ?? null,
    stop: () => child.kill("SIGKILL"),
  };
}

function track(lab: Lab, child: ChildProcess) {
  lab.children.add(child);
  child.once("exit", () => lab.children.delete(child));
}
