import { writeFileSync } from 'node:fs';
import { defineConfig } from 'vite';

// The GUI is served by atlas-server from web/dist (embedded in the binary). `npm run dev`
// proxies /api to a running server: ATLAS_URL, http://127.0.0.1:5555 by default.
export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 200,
  },
  plugins: [
    {
      // dist/.gitkeep is committed so that `go build` finds the embedded directory without Node.
      name: 'keep-dist-gitkeep',
      closeBundle() {
        writeFileSync('dist/.gitkeep', '');
      },
    },
  ],
  server: {
    proxy: { '/api': { target: process.env.ATLAS_URL || 'http://127.0.0.1:5555' } },
  },
});
