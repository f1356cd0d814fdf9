//! The receive buffer of a consumer's Fetch connections (`SO_RCVBUF`).
//!
//! A new TCP connection starts with the system's default receive buffer
//! (`net.ipv4.tcp_rmem`'s middle value, 128 KiB on Linux) and grows it
//! only as the reader keeps up, round trip by round trip. A Fetch answer
//! of a mebibyte does not fit that window: the SPU's `sendfile` stops
//! each time the window is full, and the client's reads send the window
//! updates that let it go on, so both sides pay for many small sends.
//! Measured with `rill benchmark consume` (BENCHMARKS.md step 18): over
//! the first 100 MB of a new connection the SPU spent 25-29 ms of CPU per
//! 100 MB against 18 ms with room for two answers from the start, and a
//! consumer of 500 MB made the SPU spend a quarter less CPU and read 8-33 %
//! faster at the median (two sets of ten runs).
//!
//! So a Fetch connection asks for room for two answers (the one being
//! read and the prefetched next one) before it connects, as Kafka's
//! `receive.buffer.bytes` does. A buffer set this way no longer grows on
//! its own, and the kernel caps it at `net.core.rmem_max`; where that cap
//! is below the wanted size (Debian's default is 208 KiB) a set buffer
//! would be smaller than the one the kernel grows, so the system's
//! growing buffer is kept instead.

use std::sync::OnceLock;

/// Answers a Fetch connection has room for: the one being read and the
/// next one, asked for before the first is decoded.
const ANSWERS_BUFFERED: usize = 2;
/// Largest receive buffer asked for, whatever the fetch size.
const MAX_RECEIVE_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// The receive buffer to ask for on a connection that carries Fetches of
/// up to `max_bytes`, given the system's cap (`net.core.rmem_max`) and
/// default (`net.ipv4.tcp_rmem`'s middle value); `None` to keep the
/// system's: when the default already holds two answers, or the cap is
/// below what is wanted (or either is unknown).
pub(crate) fn wanted(
    max_bytes: i32,
    system_cap: Option<usize>,
    system_default: Option<usize>,
) -> Option<usize> {
    let answer = usize::try_from(max_bytes).ok()?;
    let wanted = answer
        .saturating_mul(ANSWERS_BUFFERED)
        .min(MAX_RECEIVE_BUFFER_BYTES);
    if wanted <= system_default? || wanted > system_cap? {
        return None;
    }
    Some(wanted)
}

/// [`wanted`] with this machine's settings, read once.
pub(crate) fn for_fetches(max_bytes: i32) -> Option<usize> {
    static SYSTEM: OnceLock<(Option<usize>, Option<usize>)> = OnceLock::new();
    let (cap, default) = *SYSTEM.get_or_init(|| {
        (
            number_in("/proc/sys/net/core/rmem_max", 0),
            number_in("/proc/sys/net/ipv4/tcp_rmem", 1),
        )
    });
    wanted(max_bytes, cap, default)
}

/// The `index`th whitespace-separated number of the file at `path`.
fn number_in(path: &str, index: usize) -> Option<usize> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .nth(index)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn room_for_two_answers_when_the_system_allows_it() {
        let (cap, default) = (Some(4 * MIB), Some(128 * 1024));
        assert_eq!(wanted(1 << 20, cap, default), Some(2 * MIB));
        // Over the cap: the system's growing buffer is kept.
        assert_eq!(wanted(4 << 20, cap, default), None);
        // The default already holds two answers.
        assert_eq!(wanted(64 * 1024, cap, default), None);
        // Bounded whatever the fetch size.
        assert_eq!(
            wanted(i32::MAX, Some(usize::MAX), default),
            Some(MAX_RECEIVE_BUFFER_BYTES)
        );
        // Unknown settings or a negative size: the system's.
        assert_eq!(wanted(1 << 20, None, default), None);
        assert_eq!(wanted(1 << 20, cap, None), None);
        assert_eq!(wanted(-1, cap, default), None);
    }
}
