package dev.rill.client;

import java.util.Objects;

/**
 * How hard the producer tries: {@link #atMostOnce()} sends each batch once (its answer is
 * still reported), {@link #atLeastOnce(RetryPolicy)} sends a batch again after a transport
 * error or a retriable error code, per the policy, keeping order within a partition.
 */
public final class DeliverySemantic {
    private final RetryPolicy policy; // null: at most once

    private DeliverySemantic(RetryPolicy policy) {
        this.policy = policy;
    }

    public static DeliverySemantic atMostOnce() {
        return new DeliverySemantic(null);
    }

    public static DeliverySemantic atLeastOnce(RetryPolicy policy) {
        return new DeliverySemantic(Objects.requireNonNull(policy, "policy"));
    }

    /** At least once with the default {@link RetryPolicy}; the producer's default. */
    public static DeliverySemantic atLeastOnce() {
        return atLeastOnce(RetryPolicy.defaults());
    }

    public boolean isAtLeastOnce() {
        return policy != null;
    }

    /** The retry policy (null for at most once). */
    public RetryPolicy retryPolicy() {
        return policy;
    }

    @Override
    public String toString() {
        return policy == null ? "AtMostOnce" : "AtLeastOnce(" + policy + ")";
    }
}
