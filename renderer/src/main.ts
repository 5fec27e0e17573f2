import { createApp } from 'vue';
import { createPinia } from 'pinia';
import App from './App.vue';
import { detectApi, setApi } from './api';
import { useUiStore } from './stores/ui';
import { useConnectionStore } from './stores/connection';
import { useKeysStore } from './stores/keys';
import './styles.css';

setApi(detectApi());
const app = createApp(App);
const pinia = createPinia();
app.use(pinia);
useUiStore().init(window.matchMedia('(prefers-color-scheme: dark)').matches, localStorage.getItem('etcdesk-theme'));
void useConnectionStore().init();
// e2e and support: what the renderer holds, without reaching into Vue.
Object.defineProperty(window, '__etcdesk', { value: { loadedKeyRows: () => useKeysStore().loadedRows, firstPageMs: () => useKeysStore().firstPageMs } });
app.mount('#app');
