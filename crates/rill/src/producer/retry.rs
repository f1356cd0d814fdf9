//! Retry policies for `AtLeastOnce` delivery, as Fluvio documents them.

use std::time::Duration;

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RetryStrategy {
    /// `initial_delay` every time.
    FixedDelay,
    /// `initial, initial, 2×, 3×, 5×, 8× …`, capped at `max_delay`.
    FibonacciBackoff,
    /// `initial × 10^(n−1)`, capped at `max_delay`.
    #[default]
    ExponentialBackoff,
}

/// At most `max_retries` retries, `strategy` delays between them, all
/// attempts within `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most retries after the first attempt.
    pub max_retries: usize,
    /// The first delay.
    pub initial_delay: Duration,
    /// No delay is longer than this.
    pub max_delay: Duration,
    /// All attempts together end within this.
    pub timeout: Duration,
    /// How delays grow.
    pub strategy: RetryStrategy,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(200),
            timeout: Duration::from_secs(300),
            strategy: RetryStrategy::ExponentialBackoff,
        }
    }
}

impl RetryPolicy {
    /// The delay before each retry, in order: `max_retries` of them.
    pub fn delays(&self) -> RetryDelays {
        RetryDelays {
            policy: *self,
            retry: 0,
            fib: (self.initial_delay, self.initial_delay),
        }
    }
}

/// The delays of a [`RetryPolicy`], one per retry.
#[derive(Debug, Clone)]
pub struct RetryDelays {
    policy: RetryPolicy,
    retry: usize,
    /// The two Fibonacci terms to come.
    fib: (Duration, Duration),
}

impl Iterator for RetryDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let p = &self.policy;
        if self.retry >= p.max_retries {
            return None;
        }
        self.retry += 1;
        let delay = match p.strategy {
            RetryStrategy::FixedDelay => p.initial_delay,
            RetryStrategy::FibonacciBackoff => {
                let (a, b) = self.fib;
                self.fib = (b, a.saturating_add(b));
                a
            }
            RetryStrategy::ExponentialBackoff => {
                let power = u32::try_from(self.retry - 1).unwrap_or(u32::MAX);
                10u32
                    .checked_pow(power)
                    .and_then(|f| p.initial_delay.checked_mul(f))
                    .unwrap_or(p.max_delay)
            }
        };
        Some(delay.min(p.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn the_documented_exponential_example() {
        // producers.md: 10 ms initial, 2 s max, 5 retries.
        let policy = RetryPolicy {
            max_retries: 5,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            strategy: RetryStrategy::ExponentialBackoff,
        };
        assert_eq!(
            policy.delays().collect::<Vec<_>>(),
            ms(&[10, 100, 1000, 2000, 2000])
        );
    }

    #[test]
    fn fibonacci_and_fixed() {
        let fib = RetryPolicy {
            max_retries: 8,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            strategy: RetryStrategy::FibonacciBackoff,
            ..RetryPolicy::default()
        };
        assert_eq!(
            fib.delays().collect::<Vec<_>>(),
            ms(&[10, 10, 20, 30, 50, 80, 100, 100])
        );
        let fixed = RetryPolicy {
            strategy: RetryStrategy::FixedDelay,
            max_retries: 3,
            ..fib
        };
        assert_eq!(fixed.delays().collect::<Vec<_>>(), ms(&[10, 10, 10]));
    }

    #[test]
    fn default_policy() {
        let p = RetryPolicy::default();
        assert_eq!(p.delays().collect::<Vec<_>>(), ms(&[20, 200, 2000, 20_000]));
        assert_eq!(p.timeout, Duration::from_secs(300));
        let none = RetryPolicy {
            max_retries: 0,
            ..p
        };
        assert_eq!(none.delays().count(), 0);
        // Huge exponents saturate at the cap instead of overflowing.
        let many = RetryPolicy {
            max_retries: 30,
            ..p
        };
        assert_eq!(many.delays().last(), Some(p.max_delay));
    }
}
