package dev.rill.client;

/** The codec each batch is compressed with. */
public enum Compression {
    NONE, GZIP, SNAPPY, LZ4, ZSTD
}
