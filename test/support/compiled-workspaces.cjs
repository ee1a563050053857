// Preloaded (node --require) by a compiled program run from the repository
// (dist/, npm run build): resolves the workspace packages @fnol/api and
// @fnol/model-fetch to their compiled dist/lib/NAME/src/index.js, as the images
// do, instead of the TypeScript sources their package.json exports in development.
/* global require, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS preload for plain node */
'use strict';
const Module = require('node:module');
const path = require('node:path');

const dist = path.resolve(__dirname, '..', '..', 'dist');
const packages = { '@fnol/api': 'api', '@fnol/model-fetch': 'model-fetch' };
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const name = packages[request];
  if (name && parent && parent.filename && parent.filename.startsWith(dist + path.sep)) {
    return path.join(dist, 'lib', name, 'src', 'index.js');
  }
  return resolve.call(this, request, parent, ...rest);
};
