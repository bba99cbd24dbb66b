import { describe, expect, it } from "vitest";
import { execTranscript, toAsciicast } from "./cast.js";
import { createSftpObserver, type SftpOperation } from "./sftp-observer.js";

const at = Date.parse("2026-12-03T10:00:00Z");

describe("asciicast from SSH records", () => {
  it("writes a v2 header from the shell record and one event per output, input and resize of that channel", () => {
    const cast = toAsciicast([
      { kind: "exec", time: at, payload: { channel: 0, command: "true" } },
      { kind: "shell", time: at, payload: { channel: 1, term: "xterm-256color", width: 120, height: 40 } },
      { kind: "output", time: at, payload: { channel: 1, t: 0.1, data: "$ " } },
      { kind: "output", time: at, payload: { channel: 0, t: 0.15, data: "other channel" } },
      { kind: "input", time: at, payload: { channel: 1, t: 0.5, data: "ls\r" } },
      { kind: "resize", time: at, payload: { channel: 1, t: 0.7, width: 100, height: 30 } },
    ]);
    const lines = (cast as string)
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines[0]).toEqual({
      version: 2,
      width: 120,
      height: 40,
      timestamp: at / 1000,
      env: { TERM: "xterm-256color", SHELL: "/bin/sh" },
    });
    expect(lines.slice(1)).toEqual([
      [0.1, "o", "$ "],
      [0.5, "i", "ls\r"],
      [0.7, "r", "100x30"],
    ]);
  });

  it("is null for a session without a shell, whose exec transcript names the command and exit", () => {
    const records = [
      { kind: "exec", time: at, payload: { channel: 0, command: "uptime" } },
      { kind: "exit", time: at, payload: { channel: 0, exitCode: 3, signal: null } },
    ];
    expect(toAsciicast(records)).toBeNull();
    expect(execTranscript(records)).toBe(
      `2026-12-03T10:00:00.000Z $ uptime\n2026-12-03T10:00:00.000Z exit 3 [channel 0]\n`,
    );
  });
});

function packet(type: number, ...fields: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...fields]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s: string | Buffer) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);

describe("SFTP observer", () => {
  it("reports a written file with its size, split across chunks, and a rename", () => {
    const seen: SftpOperation[] = [];
    const observer = createSftpObserver((op) => seen.push(op));
    // The OPEN, then the server's HANDLE for it, then writes, close and a rename, cut into 7-byte chunks.
    observer.client(packet(3, u32(1), str("/tmp/up.bin"), u32(0x02 | 0x08), u32(0)));
    observer.server(packet(102, u32(1), str("h1")));
    const client = Buffer.concat([
      packet(6, u32(2), str("h1"), u64(0), str(Buffer.alloc(1000))),
      packet(6, u32(3), str("h1"), u64(1000), str(Buffer.alloc(24))),
      packet(4, u32(4), str("h1")),
      packet(18, u32(5), str("/tmp/up.bin"), str("/tmp/final.bin")),
    ]);
    for (let i = 0; i < client.length; i += 7) observer.client(client.subarray(i, i + 7));
    expect(seen).toEqual([
      { op: "file", path: "/tmp/up.bin", mode: "write", bytesRead: 0, bytesWritten: 1024 },
      { op: "rename", path: "/tmp/up.bin", to: "/tmp/final.bin" },
    ]);
  });

  it("stops observing (once, said so) at a packet larger than it reads", () => {
    const seen: SftpOperation[] = [];
    const observer = createSftpObserver((op) => seen.push(op));
    observer.client(u32(10 * 1024 * 1024));
    observer.client(packet(13, u32(1), str("/x")));
    expect(seen).toEqual([{ op: "unobserved", reason: expect.stringContaining("larger") }]);
  });
});
