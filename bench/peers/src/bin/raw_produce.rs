//! The most any broker can do on this machine: a client sends ready-made
//! batches (64 KiB unless told) over loopback TCP, a server appends each to a
//! file and answers it with 8 bytes. No protocol, no parsing, no copies but
//! the socket's and the file's. With `--flush always` the server fdatasyncs
//! before it answers, covering every batch it has read by then (group
//! commit: while a sync runs, batches queue in the socket and the next sync
//! covers them all).
//!
//! With `--batch-bytes` equal to `--size`, `--in-flight 1` and `--flush
//! always` it is a durable ping-pong: one record sent, appended, fdatasynced
//! and answered at a time, the floor of a networked durable acknowledgement
//! (each fdatasync follows an idle round trip, which makes it slower than
//! back-to-back ones in a plain fdatasync loop).
//!
//! The server allocates the file's disk blocks ahead of its end in steps of
//! `--allocate-ahead` bytes (4 MiB unless told; 0 turns it off), with
//! `fallocate(FALLOC_FL_KEEP_SIZE)`, as the SPU does for its active
//! segment: appends into allocated blocks skip ext4's per-page delayed
//! allocation (and its occasional stalls of seconds), so a peer without it
//! would not be the most a broker can do.
//!
//! Usage: raw_produce --dir DIR [--size 1024] [--count 500000]
//!        [--batch-bytes 65536] [--in-flight 5] [--flush never|always]
//!        [--allocate-ahead 4194304]
//! Prints `raw records_per_s=.. mb_per_s=.. batches=.. syncs=.. p50_us=..
//! p99_us=.. p999_us=..` (latency of each batch from its send to its answer).

use std::fs::OpenOptions;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;

/// Size of the server's socket read buffer.
const READ_BUFFER_BYTES: usize = 1 << 20;

struct Opts {
    dir: PathBuf,
    size: usize,
    count: u64,
    batch_bytes: usize,
    in_flight: usize,
    always: bool,
    allocate_ahead: u64,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        dir: std::env::temp_dir(),
        size: 1024,
        count: 500_000,
        batch_bytes: 64 * 1024,
        in_flight: 5,
        always: false,
        allocate_ahead: 4 << 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dir" => o.dir = value.into(),
            "--size" => o.size = value.parse()?,
            "--count" => o.count = value.parse()?,
            "--batch-bytes" => o.batch_bytes = value.parse()?,
            "--in-flight" => o.in_flight = value.parse()?,
            "--allocate-ahead" => o.allocate_ahead = value.parse()?,
            "--flush" => {
                o.always = match value.as_str() {
                    "always" => true,
                    "never" => false,
                    other => bail!("--flush never|always, not {other}"),
                }
            }
            other => bail!("unknown flag {other}"),
        }
    }
    if o.size == 0 || o.batch_bytes < o.size || o.in_flight == 0 {
        bail!("need 0 < size <= batch-bytes and in-flight >= 1");
    }
    Ok(o)
}

/// Appends every frame to `path`; answers each with its sequence number.
/// Returns the number of fdatasyncs.
fn serve(
    listener: TcpListener,
    path: PathBuf,
    always: bool,
    allocate_ahead: u64,
) -> anyhow::Result<u64> {
    let (s, _) = listener.accept()?;
    s.set_nodelay(true)?;
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    let mut rd = BufReader::with_capacity(READ_BUFFER_BYTES, s.try_clone()?);
    let mut wr = BufWriter::new(s);
    let mut frame = Vec::new();
    let (mut seq, mut answered, mut syncs) = (0u64, 0u64, 0u64);
    let (mut written, mut allocated) = (0u64, 0u64);
    loop {
        let mut len = [0u8; 4];
        if rd.read_exact(&mut len).is_err() {
            break;
        }
        frame.resize(u32::from_be_bytes(len) as usize, 0);
        rd.read_exact(&mut frame)?;
        written += frame.len() as u64;
        if allocate_ahead > 0 && written > allocated {
            let to = written + allocate_ahead;
            allocate(&file, allocated, to - allocated)?;
            allocated = to;
        }
        file.write_all(&frame)?;
        seq += 1;
        // Answer once nothing more is already read: one sync for all.
        if rd.buffer().is_empty() {
            if always {
                file.sync_data()?;
                syncs += 1;
            }
            while answered < seq {
                answered += 1;
                wr.write_all(&answered.to_be_bytes())?;
            }
            wr.flush()?;
        }
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(syncs)
}

/// `fallocate(FALLOC_FL_KEEP_SIZE)`: blocks for `len` bytes from `pos`,
/// the file's size unchanged.
fn allocate(file: &std::fs::File, pos: u64, len: u64) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `file` is borrowed for the call, so its descriptor is open;
    // fallocate takes no pointers.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_KEEP_SIZE,
            libc::off_t::try_from(pos)?,
            libc::off_t::try_from(len)?,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("fallocate");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let o = opts()?;
    let per_batch = o.batch_bytes / o.size;
    let batches = o.count.div_ceil(per_batch as u64);
    let payload: Vec<u8> = (0..per_batch * o.size)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let path = o
        .dir
        .join(format!("raw-produce-{}.log", std::process::id()));
    let (always, allocate_ahead) = (o.always, o.allocate_ahead);
    let server = std::thread::spawn(move || serve(listener, path, always, allocate_ahead));

    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let len = (payload.len() as u32).to_be_bytes();
    let started = Instant::now();
    let latency_us = if o.in_flight == 1 {
        // One at a time on one thread: send, wait for the answer, as a
        // ping-pong does (no hand-off to a reader thread in between).
        let mut latency_us = Histogram::<u64>::new(3)?;
        let (mut w, mut acks) = (s.try_clone()?, s);
        let mut frame = Vec::with_capacity(len.len() + payload.len());
        frame.extend_from_slice(&len);
        frame.extend_from_slice(&payload);
        let mut ack = [0u8; 8];
        for _ in 0..batches {
            let sent = Instant::now();
            w.write_all(&frame)?;
            acks.read_exact(&mut ack)?;
            latency_us.record((sent.elapsed().as_nanos() as u64 / 1000).max(1))?;
        }
        w.shutdown(std::net::Shutdown::Both)?;
        latency_us
    } else {
        let mut acks = BufReader::new(s.try_clone()?);
        // Each batch's send instant, in order; the channel's bound is the
        // number in flight.
        let (slots, freed) = sync_channel::<Instant>(o.in_flight);
        let reader = std::thread::spawn(move || -> anyhow::Result<Histogram<u64>> {
            let mut latency_us = Histogram::<u64>::new(3)?;
            let mut ack = [0u8; 8];
            for _ in 0..batches {
                acks.read_exact(&mut ack)?;
                let sent = freed.recv()?;
                latency_us.record((sent.elapsed().as_nanos() as u64 / 1000).max(1))?;
            }
            Ok(latency_us)
        });
        let mut w = s;
        for _ in 0..batches {
            slots.send(Instant::now())?;
            w.write_all(&len)?;
            w.write_all(&payload)?;
        }
        let latency_us = reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader panicked"))??;
        w.shutdown(std::net::Shutdown::Both)?;
        latency_us
    };
    let secs = started.elapsed().as_secs_f64();
    let syncs = server
        .join()
        .map_err(|_| anyhow::anyhow!("server panicked"))??;
    let records = batches * per_batch as u64;
    println!(
        "raw records_per_s={:.0} mb_per_s={:.1} batches={batches} syncs={syncs} \
         p50_us={} p99_us={} p999_us={}",
        records as f64 / secs,
        (records * o.size as u64) as f64 / secs / 1e6,
        latency_us.value_at_quantile(0.5),
        latency_us.value_at_quantile(0.99),
        latency_us.value_at_quantile(0.999),
    );
    Ok(())
}
