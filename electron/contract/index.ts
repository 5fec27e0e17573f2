// The IPC contract between main (and the browser shell) and the renderer.
export * from './types';
export * from './channels';
export * from './bytes';
export * from './txn-syntax';
export * from './error-help';
