//! Transfer steps: a file copied between a VM and the portal's backup store, or
//! between two VMs, streamed through the portal over SFTP in fixed-size pieces
//! (memory stays flat whatever the size), its size and SHA-256 recorded. A file
//! written to the store appears under its name only once it is complete.

use super::site::SiteSession;
use app::model::progress::{ProgressMeter, ProgressUnit};
use app::model::run_view::TransferRecord;
use app::ssr::engine::executor::{CancelSignal, Emit, OutputTx};
use runbook::render::RenderedEndpoint;
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const PIECE: usize = 256 * 1024;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    Ssh(#[from] super::ssh::SshError),
    #[error("the backup store path {0:?} must be relative and stay inside the store")]
    OutsideStore(String),
    #[error("{what}: {message}")]
    Io { what: String, message: String },
    #[error("stopped by the operator after {0} bytes")]
    Cancelled(u64),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TransferError {
    let what = what.into();
    move |e| TransferError::Io {
        what,
        message: e.to_string(),
    }
}

/// The absolute path of `relative` inside `store`, refusing anything that leaves it.
pub fn store_path(store: &Path, relative: &str) -> Result<PathBuf, TransferError> {
    let p = Path::new(relative);
    let inside = !relative.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && matches!(p.components().next_back(), Some(Component::Normal(_)));
    if inside {
        Ok(store.join(p))
    } else {
        Err(TransferError::OutsideStore(relative.to_string()))
    }
}

fn describe(e: &RenderedEndpoint) -> String {
    match e {
        RenderedEndpoint::Host { host, path } => format!("{host}:{path}"),
        RenderedEndpoint::Store { path } => format!("backup store:{path}"),
    }
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

async fn open_source(
    session: &SiteSession,
    store: &Path,
    from: &RenderedEndpoint,
) -> Result<(Reader, Option<u64>), TransferError> {
    match from {
        RenderedEndpoint::Store { path } => {
            let full = store_path(store, path)?;
            let file = tokio::fs::File::open(&full)
                .await
                .map_err(io(format!("cannot read {}", describe(from))))?;
            let size = file.metadata().await.ok().map(|m| m.len());
            Ok((Box::new(file), size))
        }
        RenderedEndpoint::Host { host, path } => {
            let sftp = session.connection(host).await?.sftp().await?;
            let size = sftp.metadata(path.clone()).await.ok().and_then(|m| m.size);
            let file = sftp
                .open(path.clone())
                .await
                .map_err(|e| TransferError::Io {
                    what: format!("cannot read {}", describe(from)),
                    message: e.to_string(),
                })?;
            Ok((Box::new(file), size))
        }
    }
}

/// Where a copy goes; a store file is written under a temporary name first.
enum Sink {
    Store {
        tmp: PathBuf,
        target: PathBuf,
    },
    Host {
        sftp: russh_sftp::client::SftpSession,
        tmp: String,
        target: String,
    },
}

async fn open_sink(
    session: &SiteSession,
    store: &Path,
    to: &RenderedEndpoint,
) -> Result<(Writer, Sink), TransferError> {
    match to {
        RenderedEndpoint::Store { path } => {
            let target = store_path(store, path)?;
            if let Some(dir) = target.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(io(format!("cannot create {}", dir.display())))?;
            }
            // A name of its own per copy: two runs writing the same file, or
            // files differing only in their extension, never share one.
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = target.with_file_name(format!(
                ".{name}.{}.{}.part",
                std::process::id(),
                rand::random::<u32>()
            ));
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .await
                .map_err(io(format!("cannot write {}", tmp.display())))?;
            Ok((Box::new(file), Sink::Store { tmp, target }))
        }
        RenderedEndpoint::Host { host, path } => {
            let sftp = session.connection(host).await?.sftp().await?;
            // Written beside the target and renamed when complete, so a copy that
            // fails never leaves a truncated file under the target's name.
            let tmp = format!("{path}.portal-part");
            let file = sftp
                .create(tmp.clone())
                .await
                .map_err(|e| TransferError::Io {
                    what: format!("cannot write {host}:{tmp}"),
                    message: e.to_string(),
                })?;
            Ok((
                Box::new(file),
                Sink::Host {
                    sftp,
                    tmp,
                    target: path.clone(),
                },
            ))
        }
    }
}

fn megabytes(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1_048_576.0)
}

/// Copies `from` to `to`, reporting progress on `output`.
pub async fn copy(
    session: &SiteSession,
    store: &Path,
    from: &RenderedEndpoint,
    to: &RenderedEndpoint,
    output: &OutputTx,
    cancel: CancelSignal,
) -> Result<TransferRecord, TransferError> {
    let say = |line: String| {
        let _ = output.send(Emit::line(line));
    };
    let (mut reader, size) = open_source(session, store, from).await?;
    let (mut writer, sink) = open_sink(session, store, to).await?;
    say(format!(
        "copying {} → {}{}",
        describe(from),
        describe(to),
        size.map(|s| format!(" ({} bytes)", s)).unwrap_or_default()
    ));
    let mut hash = Sha256::new();
    let mut copied: u64 = 0;
    let mut buf = vec![0u8; PIECE];
    let mut next_report: u64 = 64 * 1024 * 1024;
    let started = std::time::Instant::now();
    let mut meter = ProgressMeter::new(
        format!("copy to {}", describe(to)),
        ProgressUnit::Bytes,
        size,
    );
    let result: Result<(), TransferError> = async {
        loop {
            if cancel.is_cancelled() {
                return Err(TransferError::Cancelled(copied));
            }
            let n = reader
                .read(&mut buf)
                .await
                .map_err(io(format!("reading {}", describe(from))))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            writer
                .write_all(&buf[..n])
                .await
                .map_err(io(format!("writing {}", describe(to))))?;
            copied += n as u64;
            if let Some(p) = meter.update(copied, started.elapsed()) {
                let _ = output.send(Emit::Progress(p));
            }
            if copied >= next_report {
                next_report += 64 * 1024 * 1024;
                say(format!(
                    "{} of {}",
                    megabytes(copied),
                    size.map(megabytes).unwrap_or_else(|| "?".into())
                ));
            }
        }
        writer
            .flush()
            .await
            .map_err(io(format!("writing {}", describe(to))))?;
        writer
            .shutdown()
            .await
            .map_err(io(format!("closing {}", describe(to))))?;
        Ok(())
    }
    .await;
    drop(writer);
    match (&result, &sink) {
        (Ok(()), Sink::Store { tmp, target }) => {
            tokio::fs::rename(tmp, target)
                .await
                .map_err(io(format!("cannot finish {}", target.display())))?;
        }
        (Err(_), Sink::Store { tmp, .. }) => {
            let _ = tokio::fs::remove_file(tmp).await;
        }
        (Ok(()), Sink::Host { sftp, tmp, target }) => {
            // SFTP v3 rename does not replace an existing file on OpenSSH's server.
            if sftp.rename(tmp.clone(), target.clone()).await.is_err() {
                let _ = sftp.remove_file(target.clone()).await;
                if let Err(e) = sftp.rename(tmp.clone(), target.clone()).await {
                    let _ = sftp.remove_file(tmp.clone()).await;
                    return Err(TransferError::Io {
                        what: format!("cannot finish {}", describe(to)),
                        message: e.to_string(),
                    });
                }
            }
        }
        (Err(_), Sink::Host { sftp, tmp, .. }) => {
            let _ = sftp.remove_file(tmp.clone()).await;
        }
    }
    result?;
    let sha256 = hex::encode(hash.finalize());
    let _ = output.send(Emit::Progress(meter.finish(copied, started.elapsed())));
    say(format!("copied {copied} bytes, SHA-256 {sha256}"));
    Ok(TransferRecord {
        bytes: copied,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_paths_stay_inside_the_store() {
        let store = Path::new("/srv/store");
        assert_eq!(
            store_path(store, "fra1/2026-11-26/crontab_cluman.txt").unwrap(),
            Path::new("/srv/store/fra1/2026-11-26/crontab_cluman.txt")
        );
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "."] {
            assert!(store_path(store, bad).is_err(), "{bad}");
        }
    }
}
