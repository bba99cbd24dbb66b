/**
 * Small measurement helpers shared by the benchmarks: a seeded PRNG so data sets are the same on
 * every run, latency sampling with `process.hrtime.bigint`, and a plain-text table.
 */

/** mulberry32: tiny, fast and good enough to spread synthetic data; the same seed gives the same data. */
export function createRandom(seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (below: number): number => Math.floor(next() * below);
  return {
    next,
    int,
    pick<T>(items: readonly T[]): T {
      return items[int(items.length)] as T;
    },
  };
}

export interface LatencySummary {
  readonly name: string;
  /** Nanoseconds per operation. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly opsPerSecond: number;
  readonly operations: number;
  readonly batchSize: number;
  readonly note?: string;
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

/** Keeps results observable so the JIT cannot drop the measured work. */
export const sink = { value: 0 };

/**
 * Runs `operation(i)` for i in [0, operations) in batches of `batchSize`, timing each batch with
 * `process.hrtime.bigint()`. Each batch yields one sample (batch time / batch size), so p50/p99
 * are percentiles of per-operation cost over batches: batching keeps the timer's own ~50 ns out
 * of sub-microsecond figures, at the price of smoothing single-operation outliers inside a batch.
 */
export function measure(
  name: string,
  operations: number,
  batchSize: number,
  operation: (index: number) => unknown,
  note?: string,
): LatencySummary {
  const batches = Math.max(1, Math.floor(operations / batchSize));
  const samples = new Float64Array(batches);
  let observed = 0;
  let total = 0n;
  let index = 0;
  for (let batch = 0; batch < batches; batch++) {
    const start = process.hrtime.bigint();
    for (let k = 0; k < batchSize; k++) {
      if (operation(index++)) observed++;
    }
    const elapsed = process.hrtime.bigint() - start;
    total += elapsed;
    samples[batch] = Number(elapsed) / batchSize;
  }
  sink.value += observed;
  samples.sort();
  const done = batches * batchSize;
  return {
    name,
    p50: percentile(samples, 0.5),
    p99: percentile(samples, 0.99),
    max: samples[samples.length - 1] as number,
    opsPerSecond: done / (Number(total) / 1e9),
    operations: done,
    batchSize,
    ...(note === undefined ? {} : { note }),
  };
}

/** Formats nanoseconds as µs with sensible precision. */
export function formatMicros(nanoseconds: number): string {
  const micros = nanoseconds / 1000;
  if (micros < 10) return `${micros.toFixed(3)} µs`;
  if (micros < 1000) return `${micros.toFixed(1)} µs`;
  return `${(micros / 1000).toFixed(2)} ms`;
}

export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k/s`;
  return `${perSecond.toFixed(0)} /s`;
}

/** A fixed-width table of latency summaries. */
export function formatTable(title: string, rows: readonly LatencySummary[]): string {
  const header = ["", "p50", "p99", "max", "throughput", "ops", "batch", "note"];
  const body = rows.map((row) => [
    row.name,
    formatMicros(row.p50),
    formatMicros(row.p99),
    formatMicros(row.max),
    formatRate(row.opsPerSecond),
    String(row.operations),
    String(row.batchSize),
    row.note ?? "",
  ]);
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...body.map((line) => (line[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === 0 || column === cells.length - 1
          ? cell.padEnd(widths[column] ?? 0)
          : cell.padStart(widths[column] ?? 0),
      )
      .join("  ")
      .trimEnd();
  return [title, line(header), line(widths.map((width) => "-".repeat(width))), ...body.map(line)].join("\n");
}
