import type { AccessIndex } from "./access-index.js";

type Change = (index: AccessIndex) => void;

/**
 * Holds the live access index and rebuilds it when the configuration changes, without losing a
 * grant activated or closed while the rebuild reads the database: every change is applied to the
 * index in use and also recorded, and the recorded changes are replayed onto the new index before
 * it is swapped in. Rebuilds run one at a time. `rebuild` resolves once the new index is in force.
 */
export function createAccessHolder(build: () => Promise<AccessIndex>) {
  let index: AccessIndex | null = null;
  let recording: Change[] | null = null;
  let queue: Promise<void> = Promise.resolve();

  function apply(change: Change) {
    if (index) change(index);
    recording?.push(change);
  }

  return {
    current(): AccessIndex {
      if (!index) throw new Error("the access index is used before it was built");
      return index;
    },
    addGrant(id: string, user: string, zone: string, role: string, endsAt: number, resource: string | null) {
      apply((i) => i.addGrant(id, user, zone, role, endsAt, resource));
    },
    removeGrant(id: string) {
      apply((i) => i.removeGrant(id));
    },
    setUser(name: string, groups: readonly string[]) {
      apply((i) => i.setUser(name, groups));
    },
    rebuild(): Promise<void> {
      queue = queue.then(async () => {
        recording = [];
        try {
          const next = await build();
          for (const change of recording) change(next);
          index = next;
        } finally {
          recording = null;
        }
      });
      return queue;
    },
  };
}
