/**
 * Reads an SFTP (version 3) conversation as it passes, both directions, without changing it, and
 * reports file operations: each opened file with its name and the bytes read and written by the
 * time it is closed, and removals, renames and directory changes. scp in OpenSSH 9+ speaks SFTP,
 * so scp transfers are seen here too. Packets larger than `MAX_PACKET` stop the observation (the
 * bytes still pass; the stop is reported once).
 */
export type SftpOperation =
  | {
      op: "file";
      path: string;
      mode: "read" | "write" | "read-write";
      bytesRead: number;
      bytesWritten: number;
    }
  | { op: "remove" | "mkdir" | "rmdir" | "opendir"; path: string }
  | { op: "rename"; path: string; to: string }
  | { op: "unobserved"; reason: string };

const MAX_PACKET = 512 * 1024;
const FXF_READ = 1;
const FXF_WRITE = 2;

class PacketReader {
  private chunks: Buffer[] = [];
  private size = 0;
  stopped = false;
  constructor(
    private readonly onPacket: (packet: Buffer) => void,
    private readonly onStop: (reason: string) => void,
  ) {}
  push(chunk: Buffer) {
    if (this.stopped) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    for (;;) {
      if (this.size < 4) return;
      const head = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      this.chunks = [head];
      const length = head.readUInt32BE(0);
      if (length > MAX_PACKET) {
        this.stopped = true;
        this.chunks = [];
        this.onStop(`an SFTP packet of ${length} bytes is larger than the observer reads`);
        return;
      }
      if (this.size < 4 + length) return;
      this.onPacket(head.subarray(4, 4 + length));
      const rest = head.subarray(4 + length);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.size = rest.length;
    }
  }
}

function readString(packet: Buffer, offset: number): [Buffer, number] {
  const length = packet.readUInt32BE(offset);
  return [packet.subarray(offset + 4, offset + 4 + length), offset + 4 + length];
}

export function createSftpObserver(report: (operation: SftpOperation) => void) {
  const opening = new Map<number, { path: string; mode: "read" | "write" | "read-write" }>();
  const reading = new Map<number, string>();
  const files = new Map<
    string,
    { path: string; mode: "read" | "write" | "read-write"; bytesRead: number; bytesWritten: number }
  >();
  let stoppedReported = false;
  const stop = (reason: string) => {
    if (stoppedReported) return;
    stoppedReported = true;
    report({ op: "unobserved", reason });
  };
  const guard = (fn: (packet: Buffer) => void) => (packet: Buffer) => {
    try {
      fn(packet);
    } catch {
      stop("an SFTP packet could not be read");
    }
  };

  const fromClient = new PacketReader(
    guard((packet) => {
      const type = packet[0];
      if (type === undefined || type === 1) return; // INIT
      const id = packet.readUInt32BE(1);
      let offset = 5;
      switch (type) {
        case 3: {
          const [path, next] = readString(packet, offset);
          const flags = packet.readUInt32BE(next);
          const mode = flags & FXF_WRITE ? (flags & FXF_READ ? "read-write" : "write") : "read";
          opening.set(id, { path: path.toString("utf8"), mode });
          break;
        }
        case 4: {
          const [handle] = readString(packet, offset);
          const key = handle.toString("hex");
          const file = files.get(key);
          if (file) {
            files.delete(key);
            report({ op: "file", ...file });
          }
          break;
        }
        case 5: {
          const [handle] = readString(packet, offset);
          reading.set(id, handle.toString("hex"));
          break;
        }
        case 6: {
          const [handle, next] = readString(packet, offset);
          offset = next + 8;
          const length = packet.readUInt32BE(offset);
          const file = files.get(handle.toString("hex"));
          if (file) file.bytesWritten += length;
          break;
        }
        case 11:
        case 13:
        case 14:
        case 15: {
          const [path] = readString(packet, offset);
          const op = ({ 11: "opendir", 13: "remove", 14: "mkdir", 15: "rmdir" } as const)[type];
          report({ op, path: path.toString("utf8") });
          break;
        }
        case 18: {
          const [from, next] = readString(packet, offset);
          const [to] = readString(packet, next);
          report({ op: "rename", path: from.toString("utf8"), to: to.toString("utf8") });
          break;
        }
      }
    }),
    stop,
  );

  const fromServer = new PacketReader(
    guard((packet) => {
      const type = packet[0];
      if (type === undefined || type === 2) return; // VERSION
      const id = packet.readUInt32BE(1);
      if (type === 102) {
        const open = opening.get(id);
        opening.delete(id);
        if (open) {
          const [handle] = readString(packet, 5);
          files.set(handle.toString("hex"), { ...open, bytesRead: 0, bytesWritten: 0 });
        }
      } else if (type === 103) {
        const handle = reading.get(id);
        reading.delete(id);
        const file = handle ? files.get(handle) : undefined;
        if (file) file.bytesRead += packet.readUInt32BE(5);
      } else {
        opening.delete(id);
        reading.delete(id);
      }
    }),
    stop,
  );

  return {
    client: (chunk: Buffer) => fromClient.push(chunk),
    server: (chunk: Buffer) => fromServer.push(chunk),
    /** Files still open when the channel ends are reported as they stand. */
    finish() {
      for (const file of files.values()) report({ op: "file", ...file });
      files.clear();
    },
  };
}
