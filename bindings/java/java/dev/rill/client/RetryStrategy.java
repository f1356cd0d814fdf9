package dev.rill.client;

/** How the delay between retries grows. */
public enum RetryStrategy {
    /** {@code initialDelay} every time. */
    FIXED_DELAY,
    /** initial, initial, 2x, 3x, 5x, 8x ... capped at {@code maxDelay}. */
    FIBONACCI_BACKOFF,
    /** initial x 10^(n-1), capped at {@code maxDelay}; the default. */
    EXPONENTIAL_BACKOFF
}
