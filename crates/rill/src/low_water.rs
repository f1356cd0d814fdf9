//! The socket's receive low-water mark (`SO_RCVLOWAT`).
//!
//! While a large answer (a Fetch of a megabyte) streams in, the reader
//! would otherwise be woken for every few dozen kilobytes the SPU's
//! `sendfile` puts on the wire: each wake-up is a context switch on the
//! client and, on loopback, a wake-up the SPU's sending thread pays for.
//! With the mark set, the kernel wakes the reader only once that many bytes
//! wait (or the receive window runs low), so the answer is copied out in a
//! few large reads. The mark is only ever set to bytes the current answer
//! still owes, so it cannot hold back an answer that is complete; it is put
//! back to 1 before the next answer is read.

use std::os::fd::AsRawFd;

/// Largest mark set while an answer streams in: large enough that a 1 MiB
/// answer is read in about four wake-ups, small enough that copying out
/// overlaps with the SPU still sending.
pub(crate) const MAX_LOW_WATER_BYTES: usize = 256 * 1024;

/// Least bytes still owed for which a mark is set: below it the wake-ups
/// saved do not pay for the two `setsockopt` calls.
pub(crate) const MIN_LOW_WATER_BYTES: usize = 64 * 1024;

/// A reader whose kernel wake-ups can be held back until `bytes` are
/// ready. A hint: failures are ignored (reading works the same, with more
/// wake-ups).
pub(crate) trait LowWater {
    fn set_low_water(&self, bytes: usize);
}

impl LowWater for tokio::net::tcp::OwnedReadHalf {
    fn set_low_water(&self, bytes: usize) {
        let tcp: &tokio::net::TcpStream = self.as_ref();
        if let Err(e) = set_receive_low_water(tcp, bytes) {
            tracing::debug!(error = %e, bytes, "SO_RCVLOWAT not set");
        }
    }
}

/// In-memory pipes (tests) have no kernel to hold back.
impl LowWater for tokio::io::DuplexStream {
    fn set_low_water(&self, _bytes: usize) {}
}

/// Sets `SO_RCVLOWAT` on `socket` (clamped to `i32::MAX`).
#[allow(unsafe_code)]
fn set_receive_low_water(socket: &impl AsRawFd, bytes: usize) -> std::io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `socket` is borrowed for the whole call, so its descriptor
    // is open; the option value is a live `c_int` whose exact size is
    // passed, and setsockopt only reads it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// The kernel honours the mark: 10 bytes of 1,000 do not make the
    /// socket readable, the 1,000th does, and once the mark is back at 1 a
    /// single byte does again.
    #[tokio::test]
    async fn a_socket_is_readable_only_once_the_mark_is_reached() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut server, _) = accepted.unwrap();
        let (mut reader, _writer) = client.unwrap().into_split();

        reader.set_low_water(1000);
        server.write_all(&[7u8; 10]).await.unwrap();
        let early = tokio::time::timeout(Duration::from_millis(200), reader.readable()).await;
        assert!(early.is_err(), "readable with 10 of 1000 bytes");
        server.write_all(&[7u8; 990]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), reader.readable())
            .await
            .expect("not readable with all 1000 bytes")
            .unwrap();
        let mut got = vec![0u8; 1000];
        tokio::io::AsyncReadExt::read_exact(&mut reader, &mut got)
            .await
            .unwrap();

        reader.set_low_water(1);
        server.write_all(&[1u8]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), reader.readable())
            .await
            .expect("not readable with one byte at mark 1")
            .unwrap();
    }
}
