#!/usr/bin/env node
// A solc command line on solc-js, for forge on machines that cannot download a
// compiler. forge calls it with --version (on every run) and with --standard-json.
// It compiles with the image's own solc-js, or, when SOLJSON_DIR names a directory of
// the compiler store (soljson.js and its VERSION), with that build, through the same
// wrapper.
'use strict';
const fs = require('fs');
const path = require('path');

const store = process.env.SOLJSON_DIR;
const args = process.argv.slice(2);
if (args.includes('--version')) {
  // Read from a file written once: loading the compiler to ask costs a second.
  const version = fs.readFileSync(path.join(store || '/opt/solc', 'VERSION'), 'utf8').trim();
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + version + '\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('this solc only supports --version and --standard-json\n');
  process.exit(2);
}

// Imports forge did not inline are read under the paths it allows.
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (['--base-path', '--include-path', '--allow-paths'].includes(args[i]) && args[i + 1]) {
    for (const p of args[i + 1].split(',')) roots.push(p);
  }
}
if (roots.length === 0) roots.push(process.cwd());
function findImports(name) {
  for (const root of roots) {
    const file = path.resolve(root, name);
    try {
      return { contents: fs.readFileSync(file, 'utf8') };
    } catch (_) { /* next root */ }
  }
  return { error: 'File not found: ' + name };
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const solc = store
    ? require('/opt/solc/node_modules/solc/wrapper')(require(path.join(store, 'soljson.js')))
    : require('/opt/solc/node_modules/solc');
  process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8'), { import: findImports }));
});
