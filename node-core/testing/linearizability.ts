// Moved to node-core/verify/ (the app's chaos lab uses the checker through node-core's public entry).
export * from '../verify/linearizability';
