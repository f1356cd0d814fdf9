//! A timer precise enough to pace records at tens of microseconds, that an
//! async task can wait on: a Linux `timerfd` watched by the runtime's
//! reactor.
//!
//! Why not `tokio::time::sleep`: tokio's timer counts whole milliseconds,
//! far too coarse for a record due every 100 µs. Why not a pacing thread
//! that sleeps and then sends: every record then crosses from that thread
//! to a runtime worker (a futex wake and a context switch, tens of
//! microseconds on a virtual machine) before anything is written. Waiting
//! on a timerfd, the paced task sleeps in the same `epoll_wait` as the
//! producer's connection, and the thread that wakes at the due instant is
//! the one that writes the record. A timerfd's expiry is also not stretched
//! by the thread's timer slack (50 µs by default), as `nanosleep`'s is.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A one-shot monotonic timer that is re-armed for each instant.
#[derive(Debug)]
pub(crate) struct PaceTimer {
    fd: AsyncFd<File>,
}

impl PaceTimer {
    /// Creates the timer; it must be called inside a tokio runtime with
    /// I/O enabled.
    pub(crate) fn new() -> io::Result<Self> {
        let timer = File::from(create_timerfd()?);
        // SAFETY: the `File` owns the descriptor and lives inside the
        // `AsyncFd` (never replaced: only borrowed through `get_ref`), so
        // the descriptor stays open and the same until the `AsyncFd` drops.
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Self { fd })
    }

    /// Returns at `due` (at once if it has passed).
    pub(crate) async fn sleep_until(&self, due: Instant) -> io::Result<()> {
        let Some(left) = due
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return Ok(());
        };
        arm(self.fd.get_ref(), left)?;
        loop {
            let mut ready = self.fd.readable().await?;
            // The expiration count (8 bytes); not yet expired: WouldBlock,
            // and `try_io` clears the readiness so the wait goes on.
            match ready.try_io(|fd| fd.get_ref().read(&mut [0u8; 8])) {
                Ok(read) => {
                    // The expiry is taken: without clearing, the next wait
                    // would find the timer "ready", read it in vain and
                    // only then go to sleep (a system call per record).
                    ready.clear_ready();
                    return read.map(drop);
                }
                Err(_not_yet) => continue,
            }
        }
    }
}

/// A non-blocking `CLOCK_MONOTONIC` timerfd (the clock `Instant` reads).
#[allow(unsafe_code)]
fn create_timerfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with constant arguments; no memory passed.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by timerfd_create, is open, and is
    // owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms `timer` to expire once, `after` from now. `after` is not zero
/// (that would disarm the timer): `sleep_until` returns at once instead.
#[allow(unsafe_code)]
fn arm(timer: &File, after: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(after.subsec_nanos()),
        },
    };
    // SAFETY: `timer` is borrowed for the call, so its descriptor is open;
    // `value` is a live itimerspec that timerfd_settime only reads, and the
    // old value is not asked for (null).
    let rc = unsafe { libc::timerfd_settime(timer.as_raw_fd(), 0, &value, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timer neither returns before the instant nor long after it, and
    /// an instant that has passed returns at once.
    #[tokio::test]
    async fn wakes_at_the_instant_and_not_before() {
        let timer = PaceTimer::new().expect("a timerfd");
        for wait_us in [200u64, 1_000, 5_000] {
            let due = Instant::now() + Duration::from_micros(wait_us);
            timer.sleep_until(due).await.expect("waited");
            let woke = Instant::now();
            assert!(woke >= due, "woke {:?} early", due - woke);
            // Generous: a loaded CI machine may run the task late, but a
            // millisecond-granular timer would be off by up to 1 ms on
            // every wait, and a broken one would hang or return at once.
            assert!(
                woke - due < Duration::from_millis(500),
                "woke {:?} late",
                woke - due
            );
        }
        let passed = Instant::now() - Duration::from_millis(1);
        let started = Instant::now();
        timer.sleep_until(passed).await.expect("no wait");
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
