// zip.test.mjs again with fflate's inflater alone: the path of a browser without
// `DecompressionStream('deflate-raw')`, and the one every entry the browser's inflater refuses
// takes (project-zip.js `inflateNative`). zip.test.mjs itself runs the browser's path (Node.js
// has the same DecompressionStream).

import { useNativeInflate } from '../../www/project/project-zip.js';

useNativeInflate(false);
await import('./zip.test.mjs');
