//! Writes a response frame in pieces: bytes as they are, and stored
//! batches straight from their segment file with `sendfile(2)` when the
//! stream is a TCP socket (the kernel copies from the page cache to the
//! socket; the SPU never holds the records). Any other stream (the
//! in-memory pipes of tests) gets the file's bytes read and written.

use std::any::Any;
use std::io;

use rill_storage::FileSlice;
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::api::fetch_frame::{read_slice, Piece, Pieces};

/// Most bytes one `sendfile` call is asked for; the socket's free buffer
/// space bounds what it takes anyway.
const MAX_SENDFILE_CALL_BYTES: usize = 1 << 30;

/// Writes every piece in order, then flushes.
pub(crate) async fn write_pieces<W>(wr: &mut W, pieces: Pieces) -> io::Result<()>
where
    W: AsyncWrite + Unpin + 'static,
{
    for piece in pieces.pieces {
        match piece {
            Piece::Bytes(bytes) => wr.write_all(&bytes).await?,
            Piece::File(slice) => {
                if let Some(tcp) = (&*wr as &dyn Any).downcast_ref::<TcpStream>() {
                    send_file(tcp, &slice).await?;
                } else {
                    wr.write_all(&read_slice(&slice)?).await?;
                }
            }
        }
    }
    wr.flush().await
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
