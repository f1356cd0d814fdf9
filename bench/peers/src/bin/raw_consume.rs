//! The physical limit of a consumer on this machine: a server thread
//! streams a file to a client over loopback TCP with `sendfile(2)` (page
//! cache to socket, no user-space copy), and the client reads into one
//! reused buffer and discards. Prints one line of `key=value` pairs for
//! `bench/compare`.
//!
//! Usage: raw_consume --bytes N [--dir D] [--rounds R]
//! The file (N bytes) is written to D (default: the temp dir), read once to
//! warm the page cache, streamed R times (default 3); the best round counts.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use anyhow::{bail, Context as _};

/// Bytes the client reads per `read` (a consumer's fetch buffer).
const READ_BUFFER_BYTES: usize = 1024 * 1024;
/// Most bytes one `sendfile` call is asked for.
const SENDFILE_CHUNK_BYTES: usize = 1 << 30;

fn stream_file(mut sock: TcpStream, file: &File, len: u64) -> anyhow::Result<()> {
    let mut offset: libc::off_t = 0;
    while (offset as u64) < len {
        let want = ((len - offset as u64) as usize).min(SENDFILE_CHUNK_BYTES);
        // SAFETY: both descriptors are open for the whole call; `offset`
        // is a valid pointer the kernel advances by the bytes sent.
        let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut offset, want) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("sendfile");
        }
        if n == 0 {
            bail!("sendfile sent nothing at {offset}");
        }
    }
    sock.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut bytes: u64 = 512 << 20;
    let mut dir = std::env::temp_dir();
    let mut rounds = 3u32;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bytes" => bytes = value()?.parse()?,
            "--dir" => dir = value()?.into(),
            "--rounds" => rounds = value()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    let path = dir.join(format!("raw_consume-{}.bin", std::process::id()));
    {
        let mut f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let block: Vec<u8> = (0..READ_BUFFER_BYTES).map(|i| (i % 251) as u8).collect();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n])?;
            left -= n as u64;
        }
    }
    let result = (|| {
        let file = File::open(&path)?;
        // Warm the page cache, as a topic just produced is.
        std::io::copy(&mut File::open(&path)?, &mut std::io::sink())?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut best = f64::INFINITY;
        for _ in 0..rounds {
            let server = std::thread::scope(|s| -> anyhow::Result<f64> {
                let sender = s.spawn(|| -> anyhow::Result<()> {
                    let (sock, _) = listener.accept()?;
                    stream_file(sock, &file, bytes)
                });
                let mut client = TcpStream::connect(addr)?;
                let mut buf = vec![0u8; READ_BUFFER_BYTES];
                let started = Instant::now();
                let mut got = 0u64;
                loop {
                    let n = client.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    got += n as u64;
                }
                let secs = started.elapsed().as_secs_f64();
                sender
                    .join()
                    .map_err(|_| anyhow::anyhow!("sender panicked"))??;
                if got != bytes {
                    bail!("read {got} bytes of {bytes}");
                }
                Ok(secs)
            })?;
            best = best.min(server);
        }
        Ok::<f64, anyhow::Error>(best)
    })();
    let _ = std::fs::remove_file(&path);
    let secs = result?;
    println!(
        "bytes={bytes} seconds={secs:.3} mb_per_s={:.1}",
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
