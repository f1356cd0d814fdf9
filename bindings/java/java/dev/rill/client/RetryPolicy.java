package dev.rill.client;

import java.time.Duration;
import java.util.Objects;

/**
 * At most {@code maxRetries} retries, delays between them per {@code strategy} (starting at
 * {@code initialDelay}, never over {@code maxDelay}), all attempts within {@code timeout}.
 * The default policy is the Rust client's: 4 retries, 20 ms, 200 s, 300 s, exponential.
 */
public final class RetryPolicy {
    private final int maxRetries;
    private final Duration initialDelay;
    private final Duration maxDelay;
    private final Duration timeout;
    private final RetryStrategy strategy;

    public RetryPolicy(int maxRetries, Duration initialDelay, Duration maxDelay, Duration timeout,
            RetryStrategy strategy) {
        if (maxRetries < 0) {
            throw new IllegalArgumentException("maxRetries must not be negative: " + maxRetries);
        }
        this.maxRetries = maxRetries;
        this.initialDelay = TopicProducerConfig.checked("initialDelay", initialDelay);
        this.maxDelay = TopicProducerConfig.checked("maxDelay", maxDelay);
        this.timeout = TopicProducerConfig.checked("timeout", timeout);
        this.strategy = Objects.requireNonNull(strategy, "strategy");
    }

    /** The Rust client's default policy. */
    public static RetryPolicy defaults() {
        return new RetryPolicy(4, Duration.ofMillis(20), Duration.ofSeconds(200),
                Duration.ofSeconds(300), RetryStrategy.EXPONENTIAL_BACKOFF);
    }

    public int maxRetries() {
        return maxRetries;
    }

    public Duration initialDelay() {
        return initialDelay;
    }

    public Duration maxDelay() {
        return maxDelay;
    }

    public Duration timeout() {
        return timeout;
    }

    public RetryStrategy strategy() {
        return strategy;
    }

    @Override
    public String toString() {
        return "RetryPolicy{maxRetries=" + maxRetries + ", initialDelay=" + initialDelay
                + ", maxDelay=" + maxDelay + ", timeout=" + timeout + ", strategy=" + strategy
                + "}";
    }
}
