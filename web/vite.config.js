// Vite builds the studio into one hashed bundle under assets/ plus index.html;
// scripts/embed-web.mjs then embeds that folder in the bertstudio binary.
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    target: 'es2020',
    // No inline scripts or data: URLs: the server's CSP allows only 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2000,
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev`: the API of a local `bertstudio serve` on port 8000.
    proxy: Object.fromEntries(
      ['/auth', '/tasks', '/custom-tasks', '/models', '/api-keys', '/sessions', '/logs',
       '/settings', '/health', '/admin', '/tokenize', '/v1'].map((p) => [p, 'http://127.0.0.1:8000'])),
  },
});
