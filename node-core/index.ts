export * from './client/index';
