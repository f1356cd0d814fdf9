// The documented at-most-once example (design.md §2), in JavaScript.
//
// Needs a running SPU and the topic: `rill cluster start`, then
// `rill topic create greetings`. The address comes from RILL_ADDR, else
// the profile `rill cluster start` wrote, else 127.0.0.1:9092.
'use strict';

const { Rill, TopicProducerConfigBuilder, DeliverySemantic } = require('@rill/client');

async function main() {
  const rill = await Rill.connect();
  const config = new TopicProducerConfigBuilder()
    .deliverySemantic(DeliverySemantic.atMostOnce())
    .build();
  const producer = await rill.topicProducerWithConfig('greetings', config);
  const output = await producer.send('Hello', 'Rill!');
  const metadata = await output.wait(); // wait for the response, considering `isolation` as well
  console.log(`partition ${metadata.partition}, offset ${metadata.offset}`);
}

main().catch((e) => {
  console.error(`${e.name}: ${e.message}`);
  process.exitCode = 1;
});
