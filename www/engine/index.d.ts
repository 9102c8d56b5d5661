// Types of engine/index.js, the package's entry.
export * from './client.js';
export * from './classifier.js';
