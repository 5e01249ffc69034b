/**
 * The public entry of the comparator core. `proxy/` imports from here and nowhere else in
 * `compare/`, so the core's internal layout can change without touching the I/O side.
 */

export * from './wire/bytes.js';
export * from './wire/error.js';
export * from './wire/link.js';
export * from './wire/ethernet.js';
