/** Runs `work` over `items` with at most `limit` in flight; results come back in input order. */
export async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let index = next++; index < items.length; index = next++)
        results[index] = await work(items[index] as T);
    }),
  );
  return results;
}
