'use strict';
// Kafka's Utils.murmur2 in plain JavaScript (signed 32-bit, as Java's), to
// check the addon's partitioning against an independent implementation.

function javaMurmur2(data) {
  const m = 0x5bd1e995;
  const r = 24;
  const length = data.length;
  let h = (0x9747b28c ^ length) | 0;
  const words = length >> 2;
  for (let i = 0; i < words; i++) {
    const o = 4 * i;
    let k = data[o] | (data[o + 1] << 8) | (data[o + 2] << 16) | (data[o + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & 3;
  const t = length & ~3;
  if (tail === 3) h ^= data[t + 2] << 16;
  if (tail >= 2) h ^= data[t + 1] << 8;
  if (tail >= 1) {
    h ^= data[t];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

function javaPartition(key, partitions) {
  return (javaMurmur2(key) & 0x7fffffff) % partitions;
}

module.exports = { javaMurmur2, javaPartition };
