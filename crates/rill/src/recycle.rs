//! Buffers for large answers that go back to their connection once the
//! last view of them is dropped.
//!
//! A Fetch answer is read into one buffer of its size (about the fetch's
//! `max_bytes`), and the records handed to the application are views of
//! it. A freshly allocated buffer of a mebibyte costs page faults on first
//! touch (the kernel zeroes every page): about a tenth of a 1 KiB-record
//! consumer's time in a profile (BENCHMARKS.md, consumers). Reused, it costs
//! none. Each connection keeps at most [`IDLE_BUFFERS`] idle buffers, none
//! over [`MAX_RECYCLED_BUFFER_BYTES`]; a buffer whose connection is gone is
//! freed.

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

/// Answers of at least this many bytes are read into a recycled buffer;
/// smaller ones share the connection's read buffer.
pub(crate) const LARGE_ANSWER_BYTES: usize = 64 * 1024;
/// Idle buffers a connection keeps for its next large answers.
pub(crate) const IDLE_BUFFERS: usize = 2;
/// Larger buffers are freed rather than kept (an unusually large answer
/// must not pin its memory for the connection's life).
pub(crate) const MAX_RECYCLED_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// New buffers are sized up to a multiple of this, so answers that differ
/// by a few bytes fit each other's buffers.
const CAPACITY_STEP_BYTES: usize = 256 * 1024;

type Idle = Mutex<Vec<Vec<u8>>>;

fn lock(idle: &Idle) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
    // The list is consistent between any two statements: carry on.
    idle.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection's idle buffers.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    idle: Arc<Idle>,
}

impl BufferPool {
    /// An empty buffer with room for `size` bytes: an idle one when one is
    /// large enough, else a new one. In the second case one idle buffer
    /// (too small for this answer) is freed, so buffers sized for earlier,
    /// smaller answers cannot fill the pool and keep the larger new one out.
    pub fn take(&self, size: usize) -> Vec<u8> {
        let mut idle = lock(&self.idle);
        if let Some(i) = idle.iter().position(|b| b.capacity() >= size) {
            let mut buf = idle.swap_remove(i);
            buf.clear();
            return buf;
        }
        let too_small = idle.pop();
        drop(idle);
        drop(too_small);
        Vec::with_capacity(size.div_ceil(CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES)
    }

    /// `buf` as shared bytes; it comes back to this pool when the last
    /// view of it is dropped (if the pool still exists and has room).
    pub fn share(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Recycled {
            buf,
            pool: Arc::downgrade(&self.idle),
        })
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        lock(&self.idle).len()
    }
}

struct Recycled {
    buf: Vec<u8>,
    pool: Weak<Idle>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        if self.buf.capacity() > MAX_RECYCLED_BUFFER_BYTES {
            return;
        }
        if let Some(idle) = self.pool.upgrade() {
            let mut idle = lock(&idle);
            if idle.len() < IDLE_BUFFERS {
                idle.push(std::mem::take(&mut self.buf));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_answer_gives_its_buffer_to_the_next() {
        let pool = BufferPool::default();
        let mut buf = pool.take(1_000_000);
        buf.extend_from_slice(&[7; 1_000_000]);
        let at = buf.as_ptr();
        let answer = pool.share(buf);
        let view = answer.slice(10..20);
        drop(answer);
        assert_eq!(pool.idle_count(), 0, "a view still holds it");
        assert_eq!(&view[..], &[7; 10]);
        drop(view);
        assert_eq!(pool.idle_count(), 1);
        let again = pool.take(1_000_100);
        assert_eq!(again.as_ptr(), at, "the same memory, reused");
        assert!(again.is_empty());
        assert_eq!(pool.idle_count(), 0);
    }

    #[test]
    fn idle_buffers_are_bounded_in_number_and_size() {
        let pool = BufferPool::default();
        let answers: Vec<Bytes> = (0..IDLE_BUFFERS + 2)
            .map(|_| pool.share(pool.take(LARGE_ANSWER_BYTES)))
            .collect();
        drop(answers);
        assert_eq!(pool.idle_count(), IDLE_BUFFERS);

        let pool = BufferPool::default();
        drop(pool.share(pool.take(MAX_RECYCLED_BUFFER_BYTES + 1)));
        assert_eq!(pool.idle_count(), 0);
    }

    #[test]
    fn a_buffer_too_small_is_not_taken_but_makes_room() {
        let pool = BufferPool::default();
        let small: Vec<Bytes> = (0..IDLE_BUFFERS)
            .map(|_| pool.share(pool.take(100_000)))
            .collect();
        drop(small);
        assert_eq!(pool.idle_count(), IDLE_BUFFERS);
        let big = pool.take(2 * CAPACITY_STEP_BYTES + 1);
        assert!(big.capacity() > 2 * CAPACITY_STEP_BYTES);
        assert_eq!(pool.idle_count(), IDLE_BUFFERS - 1, "one small one freed");
        let at = big.as_ptr();
        drop(pool.share(big));
        assert_eq!(pool.idle_count(), IDLE_BUFFERS);
        let again = pool.take(2 * CAPACITY_STEP_BYTES + 1);
        assert_eq!(
            again.as_ptr(),
            at,
            "the large buffer was kept and is reused"
        );
    }

    #[test]
    fn an_answer_outliving_its_connection_is_freed() {
        let pool = BufferPool::default();
        let answer = pool.share(pool.take(100_000));
        drop(pool);
        drop(answer);
    }
}
