//! The digests an image transfer is checked with (MD5 for Glance's `checksum`,
//! SHA-512 for `os_hash_value`, SHA-256 for the run's record), each computed on
//! its own blocking thread so that hashing runs beside the network and the disk
//! instead of after them. Chunks are shared (`Bytes`), and the queues are
//! bounded: a slow hasher slows the transfer down instead of filling memory.

use bytes::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256, Sha512};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many chunks may wait for each hasher.
const QUEUE: usize = 32;

/// The three digests of some data, hex-encoded, and its length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub sha512: String,
    pub sha256: String,
    pub bytes: u64,
}

/// Hashers running on their own threads.
pub struct ParallelDigests {
    queues: Vec<mpsc::Sender<Bytes>>,
    workers: Vec<JoinHandle<String>>,
    bytes: u64,
}

fn worker<D: Digest + Send + 'static>(mut rx: mpsc::Receiver<Bytes>) -> JoinHandle<String> {
    tokio::task::spawn_blocking(move || {
        let mut d = D::new();
        while let Some(chunk) = rx.blocking_recv() {
            d.update(&chunk);
        }
        hex::encode(d.finalize())
    })
}

impl ParallelDigests {
    /// Starts the three hashers.
    pub fn start() -> Self {
        let (md5_tx, md5_rx) = mpsc::channel(QUEUE);
        let (sha512_tx, sha512_rx) = mpsc::channel(QUEUE);
        let (sha256_tx, sha256_rx) = mpsc::channel(QUEUE);
        Self {
            queues: vec![md5_tx, sha512_tx, sha256_tx],
            workers: vec![
                worker::<Md5>(md5_rx),
                worker::<Sha512>(sha512_rx),
                worker::<Sha256>(sha256_rx),
            ],
            bytes: 0,
        }
    }

    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds `chunk`; waits when a hasher is behind.
    pub async fn update(&mut self, chunk: Bytes) {
        self.bytes += chunk.len() as u64;
        for q in &self.queues {
            // A hasher only stops when its queue is closed, so this cannot fail.
            let _ = q.send(chunk.clone()).await;
        }
    }

    /// The digests of everything added.
    pub async fn finish(self) -> Result<Digests, String> {
        drop(self.queues);
        let mut out = Vec::with_capacity(3);
        for w in self.workers {
            out.push(w.await.map_err(|e| format!("a hasher stopped: {e}"))?);
        }
        let mut out = out.into_iter();
        let mut next = || out.next().unwrap_or_default();
        Ok(Digests {
            md5: next(),
            sha512: next(),
            sha256: next(),
            bytes: self.bytes,
        })
    }
}

/// Appends chunks to a file on its own blocking thread, buffered, and syncs it
/// at the end.
pub struct FileAppender {
    queue: mpsc::Sender<Bytes>,
    worker: JoinHandle<std::io::Result<()>>,
}

impl FileAppender {
    /// Appends to `path` (created if missing).
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (queue, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let worker = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk)?;
            }
            out.flush()?;
            out.get_ref().sync_all()
        });
        Ok(Self { queue, worker })
    }

    /// Queues `chunk`; false when the writer has stopped (see [`Self::finish`]).
    pub async fn write(&self, chunk: Bytes) -> bool {
        self.queue.send(chunk).await.is_ok()
    }

    /// Waits until everything is written and synced.
    pub async fn finish(self) -> std::io::Result<()> {
        drop(self.queue);
        self.worker.await.map_err(std::io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_digests_are_those_of_the_whole_data_in_order() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut p = ParallelDigests::start();
        for piece in data.chunks(4096) {
            p.update(Bytes::copy_from_slice(piece)).await;
        }
        let d = p.finish().await.unwrap();
        assert_eq!(d.bytes, data.len() as u64);
        assert_eq!(d.md5, hex::encode(Md5::digest(&data)));
        assert_eq!(d.sha512, hex::encode(Sha512::digest(&data)));
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&data)));
    }

    #[tokio::test]
    async fn the_appender_writes_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"ab").unwrap();
        let w = FileAppender::open(&path).unwrap();
        for piece in [&b"cd"[..], b"ef", b"g"] {
            assert!(w.write(Bytes::copy_from_slice(piece)).await);
        }
        w.finish().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefg");
    }

    #[tokio::test]
    async fn nothing_hashed_gives_the_empty_digests() {
        let d = ParallelDigests::start().finish().await.unwrap();
        assert_eq!(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.bytes, 0);
    }
}
