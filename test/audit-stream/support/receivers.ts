import { execFileSync } from "node:child_process";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { createOctetCountingDeframer, parseRfc5424, type SyslogMessage } from "./rfc5424.js";

/** A self-signed certificate for 127.0.0.1 and localhost, made with the system's openssl. */
export interface TestCertificate {
  key: string;
  cert: string;
  certPath: string;
  keyPath: string;
}

export function createSelfSignedCertificate(): TestCertificate {
  const directory = mkdtempSync(join(tmpdir(), "firebreak-cert-"));
  const keyPath = join(directory, "key.pem");
  const certPath = join(directory, "cert.pem");
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        keyPath,
        "-out",
        certPath,
        "-days",
        "2",
        "-subj",
        "/CN=firebreak-test-receiver",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
  } catch (error) {
    throw new Error(
      `the audit stream tests need openssl to make a test certificate: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return { key: readFileSync(keyPath, "utf8"), cert: readFileSync(certPath, "utf8"), keyPath, certPath };
}

export interface ReceivedSyslog {
  message: SyslogMessage;
  raw: Buffer;
  /** Date.now() when the frame was complete. */
  at: number;
}

/**
 * A strict syslog receiver over TCP (optionally TLS) with octet counting: every frame must parse
 * as RFC 5424, anything else is recorded in `errors`. It closes its side when the sender ends, as
 * rsyslog and syslog-ng do. `stop()` kills it the hard way (connections reset, unread data lost);
 * `start()` brings it back on the same port.
 */
export async function startStreamReceiver(options: { tls?: TestCertificate; port?: number } = {}) {
  const received: ReceivedSyslog[] = [];
  const errors: string[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let paused = false;
  const pausedSockets = new Set<net.Socket>();
  let server: net.Server;

  const onConnection = (socket: net.Socket) => {
    connections++;
    sockets.add(socket);
    const deframer = createOctetCountingDeframer();
    socket.on("data", (chunk: Buffer) => {
      try {
        for (const frame of deframer.push(chunk)) {
          try {
            received.push({ message: parseRfc5424(frame), raw: Buffer.from(frame), at: Date.now() });
          } catch (error) {
            errors.push(`bad message: ${(error as Error).message}`);
          }
        }
      } catch (error) {
        errors.push(`bad framing: ${(error as Error).message}`);
        socket.destroy();
      }
    });
    socket.on("end", () => {
      if (deframer.pending > 0)
        errors.push(`the sender ended with ${deframer.pending} bytes of an incomplete frame`);
      socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    if (paused) {
      socket.pause();
      pausedSockets.add(socket);
    }
  };

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = options.tls
        ? tls.createServer({ key: options.tls.key, cert: options.tls.cert }, onConnection)
        : net.createServer(onConnection);
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
    });
  const port = await listen(options.port ?? 0);

  return {
    port,
    url: `${options.tls ? "tcp+tls" : "tcp"}://127.0.0.1:${port}`,
    received,
    errors,
    get connections() {
      return connections;
    },
    /** Event ids (from the SD element), in arrival order. */
    ids(): string[] {
      return received.map(
        (entry) => entry.message.structuredData.get("firebreak@32473")?.get("id")?.[0] ?? "?",
      );
    },
    /** Stops reading (data piles up in the kernel), as a receiver that hangs. */
    pause() {
      paused = true;
      for (const socket of sockets) {
        socket.pause();
        pausedSockets.add(socket);
      }
    },
    resume() {
      paused = false;
      for (const socket of pausedSockets) socket.resume();
      pausedSockets.clear();
    },
    /** Dies: every connection reset (what is unread is lost), the port closed. */
    async stop() {
      paused = false;
      pausedSockets.clear();
      for (const socket of sockets) socket.resetAndDestroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    /** Comes back on the same port. */
    async start() {
      await listen(port);
    },
  };
}
export type StreamReceiver = Awaited<ReturnType<typeof startStreamReceiver>>;

/** A strict syslog receiver over UDP (RFC 5426: one message per datagram, no framing). */
export async function startUdpReceiver() {
  const received: ReceivedSyslog[] = [];
  const errors: string[] = [];
  const socket: UdpSocket = createSocket("udp4");
  socket.on("message", (datagram) => {
    try {
      received.push({ message: parseRfc5424(datagram), raw: datagram, at: Date.now() });
    } catch (error) {
      errors.push((error as Error).message);
    }
  });
  const port = await new Promise<number>((resolve) =>
    socket.bind(0, "127.0.0.1", () => resolve(socket.address().port)),
  );
  return {
    port,
    url: `udp://127.0.0.1:${port}`,
    received,
    errors,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/**
 * A local HTTPS receiver. `respond` decides each answer (200 by default); every request is kept,
 * whatever it was answered.
 */
export async function startHttpsReceiver(
  certificate: TestCertificate,
  respond: (request: ReceivedRequest) => { status: number; body?: string } = () => ({ status: 200 }),
) {
  const requests: ReceivedRequest[] = [];
  let responder = respond;
  const server = https.createServer({ key: certificate.key, cert: certificate.cert }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const received = {
        method: request.method ?? "",
        url: request.url ?? "",
        headers: request.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(received);
      const answer = responder(received);
      response.writeHead(answer.status, { "content-type": "application/json" });
      response.end(answer.body ?? "{}");
    });
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)),
  );
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    requests,
    respondWith(next: typeof respond) {
      responder = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes `content` to a new file in a temporary directory and returns its path. */
export function writeTemporaryFile(name: string, content: string): string {
  const directory = mkdtempSync(join(tmpdir(), "firebreak-secret-"));
  const path = join(directory, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** Polls `check` until it returns true, failing with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
