/**
 * Ids accepted from clients: the shape `newId` makes (src/shared/ids.ts), nothing that could be
 * anything else. Kept apart from `newId` so the API contract (src/api) can use it without Node.
 */
export const ID_PATTERN = /^(req|grt|apv|eff|inc|evt)_[a-z0-9]{8,12}[0-9a-f]{16}$/;
