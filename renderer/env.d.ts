/// <reference types="vite/client" />
import type { EtcdeskBridge } from '../electron/contract/index';

declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent<object, object, unknown>;
  export default component;
}

declare global {
  interface Window {
    /** Present only inside Electron (the preload bridge). */
    etcdesk?: EtcdeskBridge;
  }
}
