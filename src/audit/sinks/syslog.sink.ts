import { createSocket, type Socket as UdpSocket } from "node:dgram";
import net, { isIPv6 } from "node:net";
import tls from "node:tls";
import { type AuditSinkConfig, sinkOfType } from "../../config/schema.js";
import type { AuditSink, SinkDeps } from "../../plugins/contracts.js";
import type { SinkRecord } from "../analyst-view.js";
import { syslogBody } from "../formats/index.js";
import { type SyslogHeaderOptions, syslogMessage } from "../formats/rfc5424.js";
import { SinkDeliveryError, toDeliveryError } from "./sink-error.js";
import { SYSLOG_FACILITIES } from "./syslog.settings.js";
import { printableOrigin, tlsOptions } from "./tls-options.js";

/** Over UDP a datagram this size gets through almost any path; RFC 5426 asks receivers for 2048+. */
const DEFAULT_UDP_MAX_BYTES = 8192;

type Transport = "udp" | "tcp" | "tls";

export interface SyslogAddress {
  transport: Transport;
  host: string;
  port: number;
}

/** `udp://h:514`, `tcp://h:601`, `tls://h:6514` or `tcp+tls://h:6514`. */
export function parseSyslogUrl(text: string): SyslogAddress {
  const match = /^(udp|tcp|tls|tcp\+tls):\/\/(\[[0-9a-fA-F:]+\]|[^/:?#\s]+):([0-9]{1,5})\/?$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65_535) {
    throw new SinkDeliveryError("the syslog address is not 'udp://', 'tcp://' or 'tcp+tls://' host:port");
  }
  const scheme = match[1] as string;
  return {
    transport: scheme === "udp" ? "udp" : scheme === "tcp" ? "tcp" : "tls",
    host: (match[2] as string).replace(/^\[|\]$/g, ""),
    port,
  };
}

/**
 * Syslog (RFC 5424) over UDP (RFC 5426), TCP or TLS (RFC 5425) with octet-counted framing
 * (RFC 6587 section 3.4.1: `LENGTH SP MESSAGE`).
 *
 * Plain syslog over TCP has no acknowledgement, and a write that succeeded only reached our own
 * kernel. So each batch goes over a connection of its own, which we then end: a receiver closes
 * its side once it has read everything up to our end, and a receiver that died or stopped reading
 * resets the connection instead. Only that clean close counts as delivered; anything else fails
 * the batch, which is sent again whole (the event ids let the receiver drop what it already had).
 * UDP has no way to know: a datagram handed to the network counts as delivered.
 */
export function createSyslogSink(settings: AuditSinkConfig, deps: SinkDeps): AuditSink {
  const config = sinkOfType(settings, "syslog");
  const url = resolveUrl(config.url, deps);
  const address = parseSyslogUrl(url);
  const format = config.format ?? "rfc5424";
  const header: SyslogHeaderOptions = {
    facility: SYSLOG_FACILITIES.indexOf(config.facility ?? "authpriv"),
    hostname: config.hostname ?? deps.hostname,
    appName: config.appName ?? "firebreak",
    procId: deps.procId,
    maxBytes: config.maxMessageBytes ?? (address.transport === "udp" ? DEFAULT_UDP_MAX_BYTES : undefined),
  };
  const scheme = address.transport === "tls" ? "tcp+tls" : address.transport;
  const target = printableOrigin(
    new URL(`${scheme}://${isIPv6(address.host) ? `[${address.host}]` : address.host}:${address.port}`),
  );
  const secureOptions = address.transport === "tls" ? tlsOptions(config, (ref) => deps.secret(ref)) : null;
  let udp: UdpSocket | null = null;

  const render = (record: SinkRecord) => syslogMessage(record, syslogBody(format, record, header), header);

  async function deliverStream(records: readonly SinkRecord[], signal: AbortSignal): Promise<void> {
    const frames = records.map((record) => {
      const message = Buffer.from(render(record), "utf8");
      return Buffer.concat([Buffer.from(`${message.length} `, "ascii"), message]);
    });
    const payload = Buffer.concat(frames);
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      let ended = false;
      const socket =
        secureOptions === null
          ? net.connect({ host: address.host, port: address.port })
          : tls.connect({
              host: address.host,
              port: address.port,
              ...(net.isIP(address.host) === 0 ? { servername: address.host } : {}),
              ...secureOptions,
            });
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        if (error !== undefined) {
          socket.destroy();
          reject(toDeliveryError(error));
        } else resolve();
      };
      const onAbort = () => finish(new SinkDeliveryError("timed out"));
      signal.addEventListener("abort", onAbort, { once: true });
      if (signal.aborted) onAbort();
      socket.setNoDelay(true);
      socket.on("error", (error) => finish(error));
      socket.on(secureOptions === null ? "connect" : "secureConnect", () => {
        socket.end(payload, () => {
          ended = true;
        });
      });
      // A clean close after our end means the receiver read through to it (see above).
      socket.on("close", (hadError) => {
        if (hadError) return; // 'error' already settled it.
        if (!ended)
          finish(new SinkDeliveryError("the receiver closed the connection before reading the batch"));
        else finish();
      });
      // Incoming bytes are not part of syslog; reading them keeps the peer's FIN visible.
      socket.on("data", () => {});
    });
  }

  async function deliverDatagrams(records: readonly SinkRecord[], signal: AbortSignal): Promise<void> {
    if (!udp) {
      udp = createSocket(isIPv6(address.host) ? "udp6" : "udp4");
      // Errors on an unconnected socket (an ICMP refusal) are reported per send, not here.
      udp.on("error", () => {});
    }
    const socket = udp;
    let sent = 0;
    for (const record of records) {
      if (signal.aborted) throw new SinkDeliveryError("timed out", sent);
      await new Promise<void>((resolve, reject) =>
        socket.send(Buffer.from(render(record), "utf8"), address.port, address.host, (error) =>
          error ? reject(toDeliveryError(error, sent)) : resolve(),
        ),
      );
      sent++;
    }
  }

  return {
    kind: "syslog",
    target,
    deliver(records, signal) {
      return address.transport === "udp" ? deliverDatagrams(records, signal) : deliverStream(records, signal);
    },
    async close() {
      const socket = udp;
      udp = null;
      if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

function resolveUrl(url: string, deps: SinkDeps): string {
  return /^(env:|file:\/)/.test(url) ? deps.secret(url) : url;
}
