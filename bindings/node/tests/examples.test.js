'use strict';
// The two documented producer examples run against a real SPU and print
// the record's partition and offset.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { promisify } = require('node:util');

const { Rill } = require('..');
const { Spu } = require('./spu');

let spu;

before(async () => {
  spu = new Spu();
  await spu.start();
  const rill = await Rill.connect(spu.addr);
  await rill.admin().createTopic('greetings');
});

after(async () => {
  await spu.cleanup();
});

const run = promisify(execFile);

for (const [i, example] of ['at_most_once.js', 'at_least_once.js'].entries()) {
  test(`examples/${example} prints partition and offset`, async () => {
    const { stdout } = await run(process.execPath, [path.join(__dirname, '..', 'examples', example)], {
      env: { ...process.env, RILL_ADDR: spu.addr },
      timeout: 60000,
    });
    assert.equal(stdout.trim(), `partition 0, offset ${i}`);
  });
}

test('an example says what is wrong when no SPU answers', async () => {
  await assert.rejects(
    run(process.execPath, [path.join(__dirname, '..', 'examples', 'at_most_once.js')], {
      env: { ...process.env, RILL_ADDR: '127.0.0.1:1' },
      timeout: 60000,
    }),
    (e) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /^RillConnectionError: no SPU answers at 127\.0\.0\.1:1/);
      return true;
    },
  );
});
