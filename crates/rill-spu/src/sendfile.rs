//! Writes a response frame in pieces: bytes as they are, and stored
//! batches straight from their segment file with `sendfile(2)` when the
//! stream is a TCP socket (the kernel copies from the page cache to the
//! socket; the SPU never holds the records). Any other stream (the
//! in-memory pipes of tests) gets the file's bytes read and written.
//!
//! A small answer (at most [`ONE_WRITE_ANSWER_BYTES`] in all) is read and
//! written whole instead, in one write: sent in pieces, its head, records
//! and tail left as three TCP segments, and a consumer following the end
//! of a partition woke for the first and waited for the rest (17 us from
//! first to last at the median under `rill benchmark e2e` at 10 k/s,
//! `tcpdump` of loopback). Copying a few KiB costs less than that.

use std::any::Any;
use std::io;

use rill_storage::FileSlice;
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::api::fetch_frame::{Piece, Pieces};

/// Most bytes one `sendfile` call is asked for; the socket's free buffer
/// space bounds what it takes anyway.
const MAX_SENDFILE_CALL_BYTES: usize = 1 << 30;
/// Largest answer (bytes of the whole frame) read into memory and written
/// in one write rather than in pieces with `sendfile`.
pub(crate) const ONE_WRITE_ANSWER_BYTES: u64 = 16 * 1024;

/// Writes every piece in order, then flushes.
pub(crate) async fn write_pieces<W>(wr: &mut W, pieces: Pieces) -> io::Result<()>
where
    W: AsyncWrite + Unpin + 'static,
{
    let total = pieces.byte_len();
    if total <= ONE_WRITE_ANSWER_BYTES {
        // A file that ends before its slice fails here, before any byte
        // of the frame is sent.
        let frame = whole_frame(&pieces, total)?;
        wr.write_all(&frame).await?;
        return wr.flush().await;
    }
    for piece in pieces.pieces {
        match piece {
            Piece::Bytes(bytes) => wr.write_all(&bytes).await?,
            Piece::File(slice) => {
                if let Some(tcp) = (&*wr as &dyn Any).downcast_ref::<TcpStream>() {
                    send_file(tcp, &slice).await?;
                } else {
                    wr.write_all(&slice.read_bytes()?).await?;
                }
            }
        }
    }
    wr.flush().await
}

/// The frame's bytes (`total` in all) in one buffer, the file ranges read in.
fn whole_frame(pieces: &Pieces, total: u64) -> io::Result<Vec<u8>> {
    let mut frame = Vec::with_capacity(usize::try_from(total).map_err(io::Error::other)?);
    for piece in &pieces.pieces {
        match piece {
            Piece::Bytes(bytes) => frame.extend_from_slice(bytes),
            Piece::File(slice) => slice.read_into(&mut frame)?,
        }
    }
    Ok(frame)
}

/// Has the kernel send the slice's bytes to the socket, waiting for room
/// as a write would. A file that ends before the slice does (truncated
/// since: a leader turned follower) fails the write: the frame cannot be
/// finished, so the connection closes and the client fetches again.
async fn send_file(tcp: &TcpStream, slice: &FileSlice) -> io::Result<()> {
    let mut offset = slice.pos;
    let end = slice.pos + slice.len;
    while offset < end {
        let want = usize::try_from(end - offset)
            .unwrap_or(usize::MAX)
            .min(MAX_SENDFILE_CALL_BYTES);
        tcp.writable().await?;
        let sent = tcp.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(tcp, &*slice.file, Some(&mut offset), want)
                .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("segment file ended at {offset}, before the {end} its slice reaches"),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use bytes::BytesMut;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A connected pair of loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    /// What `client` got once `server` closed.
    async fn received_until_closed(server: TcpStream, mut client: TcpStream) -> Vec<u8> {
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    }

    fn file_of(len: usize) -> (Arc<std::fs::File>, Vec<u8>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        (Arc::new(f), bytes)
    }

    #[tokio::test]
    async fn a_tcp_stream_gets_the_pieces_in_order_with_file_ranges_sent_by_the_kernel() {
        let (mut server, mut client) = pair().await;
        // Larger than a socket buffer, so sendfile has to wait for room.
        let (file, bytes) = file_of(3 << 20);
        let pieces = Pieces {
            pieces: vec![
                Piece::Bytes(BytesMut::from(&b"head"[..])),
                Piece::File(FileSlice {
                    file,
                    pos: 100,
                    len: (3 << 20) - 200,
                    records: 0,
                }),
                Piece::Bytes(BytesMut::from(&b"tail"[..])),
            ],
        };
        let want: Vec<u8> = [&b"head"[..], &bytes[100..(3 << 20) - 100], &b"tail"[..]].concat();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; want.len()];
            client.read_exact(&mut got).await.unwrap();
            got == want
        });
        write_pieces(&mut server, pieces).await.unwrap();
        assert!(
            reader.await.unwrap(),
            "the bytes arrive as they are, in order"
        );
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_slice_fails_the_write() {
        let (mut server, client) = pair().await;
        let (file, _) = file_of(100_000);
        let pieces = Pieces {
            pieces: vec![Piece::File(FileSlice {
                file,
                pos: 0,
                len: 200_000,
                records: 0,
            })],
        };
        let err = write_pieces(&mut server, pieces).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        let got = received_until_closed(server, client).await;
        assert_eq!(
            got.len(),
            100_000,
            "what the file had was sent, then the close"
        );
    }

    /// Counts the writes it is given.
    #[derive(Default)]
    struct CountingWriter {
        writes: Vec<Vec<u8>>,
    }

    impl AsyncWrite for CountingWriter {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.writes.push(buf.to_vec());
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn head_file_tail(file: Arc<std::fs::File>, pos: u64, len: u64) -> Pieces {
        Pieces {
            pieces: vec![
                Piece::Bytes(BytesMut::from(&b"head"[..])),
                Piece::File(FileSlice {
                    file,
                    pos,
                    len,
                    records: 0,
                }),
                Piece::Bytes(BytesMut::from(&b"tail"[..])),
            ],
        }
    }

    #[tokio::test]
    async fn a_small_answer_goes_out_in_one_write_and_a_large_one_in_pieces() {
        let (file, bytes) = file_of(64 * 1024);
        let small = ONE_WRITE_ANSWER_BYTES - 8;
        let mut wr = CountingWriter::default();
        write_pieces(&mut wr, head_file_tail(file.clone(), 10, small))
            .await
            .unwrap();
        let want: Vec<u8> = [&b"head"[..], &bytes[10..10 + small as usize], &b"tail"[..]].concat();
        assert_eq!(wr.writes, vec![want], "one write, the whole frame");

        let mut wr = CountingWriter::default();
        write_pieces(&mut wr, head_file_tail(file, 10, small + 1))
            .await
            .unwrap();
        assert_eq!(wr.writes.len(), 3, "head, records, tail");
        assert_eq!(wr.writes.concat().len() as u64, small + 1 + 8);
    }

    #[tokio::test]
    async fn a_small_answer_whose_file_is_short_sends_nothing() {
        let (mut server, client) = pair().await;
        let (file, _) = file_of(1000);
        let err = write_pieces(&mut server, head_file_tail(file, 0, 5000))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        let got = received_until_closed(server, client).await;
        assert!(
            got.is_empty(),
            "no part of the frame went out: {} bytes",
            got.len()
        );
    }
}
