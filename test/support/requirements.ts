/**
 * What a suite needs from the machine (root, nftables, network namespaces), said once.
 *
 * In CI (`CI` set) a suite whose needs are not met fails with the reason: a suite that skipped its
 * real target would report coverage it does not have. Elsewhere (a developer's laptop without
 * root, say) it is skipped, and the reason is printed so the skip is never silent.
 */
export function skipUnlessAvailable(available: boolean, suite: string, reason: string): boolean {
  if (available) return false;
  const message = `${suite}: cannot run here: ${reason}`;
  if (process.env.CI) {
    throw new Error(`${message}. CI must run it: run README's test command (scripts/test-setup.sh) as root.`);
  }
  console.warn(`SKIPPED ${message}`);
  return true;
}
