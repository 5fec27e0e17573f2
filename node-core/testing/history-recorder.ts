// Moved to node-core/verify/ (the app's chaos lab records its workload through node-core's public entry).
export * from '../verify/history-recorder';
