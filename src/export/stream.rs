//! A `std::io::Write` that feeds a bounded channel of byte chunks, so a blocking writer (CSV,
//! GeoJSON, JSON, LIVES) can stream into an HTTP body: the writer runs on a `spawn_blocking`
//! thread, each ~64 KiB chunk is handed over through the bounded channel, and a slow reader
//! slows the writer (at most `capacity` chunks wait; a reader that takes nothing for
//! [`STALL_LIMIT`] is dropped). The first chunk goes out early (4 KiB) so the
//! client sees bytes before the bulk of the rows is read. The http layer wraps the receiver in
//! a body; nothing here knows HTTP.
//!
//! The rows usually come from an async `sqlx` stream: inside the blocking closure, pull them
//! with `tokio::runtime::Handle::block_on(stream.next())` (allowed on a blocking thread).
//!
//! Items are `Result`s: a writer that fails half way sends an `Err` last, so the body ends in
//! an error (the connection is cut) instead of looking like a complete, truncated file.

use std::io::{self, Write};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::ExportError;

/// The size a chunk is sent at.
pub const CHUNK: usize = 64 * 1024;
/// The first chunk's size: small, for an early first byte.
pub const FIRST_CHUNK: usize = 4 * 1024;
/// Chunks that may wait for the reader (so at most about 0.5 MiB in flight).
pub const CAPACITY: usize = 8;

pub type Chunk = io::Result<Bytes>;

/// How long a reader may leave a chunk untaken before the export gives up. An export holds a
/// database connection while it runs, so a client that stops reading (or reads a byte a
/// minute) must not hold it for good: a few such clients would empty the pool for everyone.
pub const STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buf: BytesMut,
    threshold: usize,
    stall_limit: std::time::Duration,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Chunk>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: BytesMut::with_capacity(CHUNK),
            threshold: FIRST_CHUNK,
            stall_limit: STALL_LIMIT,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        use mpsc::error::TrySendError;
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut chunk = Ok(self.buf.split().freeze());
        self.buf.reserve(CHUNK);
        self.threshold = CHUNK;
        // Not `blocking_send`: that waits for ever. Poll the (bounded) channel until the
        // reader takes the chunk or the stall limit passes.
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match self.tx.try_send(chunk) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the export's reader went away",
                    ))
                }
                Err(TrySendError::Full(c)) => {
                    if started.elapsed() >= self.stall_limit {
                        return Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "the export's reader stopped reading",
                        ));
                    }
                    chunk = c;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
            }
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.threshold {
            self.send()?;
        }
        Ok(data.len())
    }

    /// Sends what is buffered (a partial chunk).
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Runs `write` on a blocking thread with a [`ChannelWriter`] and returns the receiving end
/// at once. What `write` leaves buffered is sent when it returns; if it fails, the error is
/// the last item (unless the reader is gone). Must be called inside a tokio runtime.
pub fn spawn_writer<F>(write: F) -> mpsc::Receiver<Chunk>
where
    F: FnOnce(&mut ChannelWriter) -> Result<(), ExportError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CAPACITY);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter::new(tx.clone());
        // A panicking writer must still end the body in an error: dropping the sender alone
        // would end it cleanly, and a truncated file would look complete.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write(&mut out).and_then(|()| out.flush().map_err(ExportError::from))
        }))
        .unwrap_or_else(|_| {
            Err(ExportError::Io(io::Error::other(
                "the export writer panicked",
            )))
        });
        if let Err(e) = result {
            if e.is_disconnect() {
                tracing::debug!("export abandoned by its reader");
            } else {
                tracing::warn!(error = %e, "export failed part way");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_arrive_in_order_with_backpressure() {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let mut rx = spawn_writer(move |out| {
            // 4 MiB: far more than the channel holds.
            for i in 0..(4 * 1024 * 1024 / 8) {
                writeln!(out, "{:07}", i % 10_000_000)?;
            }
            d.store(true, Ordering::SeqCst);
            Ok(())
        });
        let first = rx.recv().await.unwrap().unwrap();
        assert!(
            first.len() >= FIRST_CHUNK && first.len() < CHUNK,
            "{}",
            first.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            !done.load(Ordering::SeqCst),
            "the writer ran ahead of its reader"
        );
        let mut all = first.to_vec();
        while let Some(c) = rx.recv().await {
            all.extend_from_slice(&c.unwrap());
        }
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(all.len(), 4 * 1024 * 1024);
        assert!(all.starts_with(b"0000000\n0000001\n"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_is_the_last_item() {
        let mut rx = spawn_writer(|out| {
            out.write_all(&[b'x'; 10])?;
            Err(ExportError::OutOfOrder("test"))
        });
        assert!(rx.recv().await.unwrap().is_err());
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_reading_is_dropped() {
        let (tx, mut rx) = mpsc::channel(CAPACITY);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter::new(tx);
            out.stall_limit = std::time::Duration::from_millis(300);
            let r = (|| -> io::Result<()> {
                loop {
                    out.write_all(&[b'w'; 1024])?;
                }
            })();
            let _ = done_tx.send(r.unwrap_err().kind());
        });
        // Take the first chunk, then stop reading (the receiver stays open).
        assert!(rx.recv().await.unwrap().is_ok());
        let kind = tokio::time::timeout(std::time::Duration::from_secs(10), done)
            .await
            .expect("the writer waited for ever")
            .unwrap();
        assert_eq!(kind, io::ErrorKind::BrokenPipe);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_an_error_not_an_end() {
        let mut rx = spawn_writer(|out| {
            out.write_all(&[b'z'; 2 * CHUNK])?;
            panic!("a writer bug");
        });
        let mut last = None;
        while let Some(c) = rx.recv().await {
            last = Some(c);
        }
        assert!(last.unwrap().is_err(), "the body ended as if complete");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_reader_stops_the_writer() {
        let (tx, stopped) = tokio::sync::oneshot::channel();
        let rx = spawn_writer(move |out| {
            let r = (|| -> io::Result<()> {
                loop {
                    out.write_all(&[b'y'; 1024])?;
                }
            })();
            let _ = tx.send(r.unwrap_err().kind());
            Ok(())
        });
        drop(rx);
        assert_eq!(stopped.await.unwrap(), io::ErrorKind::BrokenPipe);
    }
}
