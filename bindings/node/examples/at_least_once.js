// The documented at-least-once example (design.md §2), in JavaScript: at
// most five retries, all within 10 s, delays growing exponentially (10 ms,
// 100 ms, 1000 ms, then 2000 ms, the cap).
//
// Needs a running SPU and the topic: `rill cluster start`, then
// `rill topic create greetings`.
'use strict';

const { Rill } = require('@rill/client');

async function main() {
  const rill = await Rill.connect();
  const config = {
    deliverySemantic: {
      atLeastOnce: {
        maxRetries: 5,
        initialDelayMs: 10,
        maxDelayMs: 2000,
        timeoutMs: 10000,
        strategy: 'exponential',
      },
    },
  };
  const producer = await rill.topicProducerWithConfig('greetings', config);
  const output = await producer.send('Hello', 'Rill!');
  const metadata = await output.wait();
  console.log(`partition ${metadata.partition}, offset ${metadata.offset}`);
}

main().catch((e) => {
  console.error(`${e.name}: ${e.message}`);
  process.exitCode = 1;
});
