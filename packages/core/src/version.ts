/**
 * The version of this copy of `@rewind/core`, for messages that must tell two copies apart. Kept
 * equal to package.json's `version` by packages/core/test/copies.test.ts (bump both together).
 */
export const CORE_VERSION = '0.1.0'
