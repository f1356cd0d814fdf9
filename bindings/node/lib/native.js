'use strict';
// Loads the addon `npm run build` put in ../native: the file for this
// platform (rill.linux-x64-gnu.node), else the only rill*.node there.
// RILL_NODE_ADDON names another file.

const fs = require('node:fs');
const path = require('node:path');

function platformName() {
  const { platform, arch } = process;
  if (platform !== 'linux') return `${platform}-${arch}`;
  const report = process.report && process.report.getReport ? process.report.getReport() : null;
  const glibc = report && report.header && report.header.glibcVersionRuntime;
  return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
}

function find() {
  if (process.env.RILL_NODE_ADDON) return process.env.RILL_NODE_ADDON;
  const dir = path.join(__dirname, '..', 'native');
  const exact = path.join(dir, `rill.${platformName()}.node`);
  if (fs.existsSync(exact)) return exact;
  const any = fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((f) => f.startsWith('rill') && f.endsWith('.node'))
    : [];
  if (any.length === 1) return path.join(dir, any[0]);
  throw new Error(
    `the Rill addon is not built: run \`npm install && npm run build\` in ${path.join(__dirname, '..')}`,
  );
}

module.exports = require(find());
