//! The SFTP subsystem of every VM (russh-sftp's server side) over the VM's
//! filesystem in the site state: what the portal's transfer steps and
//! OpenSSH's `sftp`/`scp -s` use to put and get files. Writes go straight into
//! the state, so a file is visible to commands as soon as it is written.

use crate::state::vfs::{self, FsError, Node};
use crate::state::SiteState;
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves SFTP on a session channel until the client is done, then reports
/// exit status 0 as sftp-server would (`scp -s` checks it). russh-sftp runs
/// on one end of an in-memory pipe; this pumps the channel into the other, so
/// the end of the session is seen here.
pub async fn serve(channel: Channel<Msg>, handler: SftpHandler) {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    russh_sftp::server::run(theirs, handler).await;
    let (mut from_client, to_client) = channel.split();
    let (mut replies, mut requests) = tokio::io::split(ours);
    let mut buf = vec![0u8; 64 * 1024];
    let mut client_done = false;
    loop {
        tokio::select! {
            msg = from_client.wait(), if !client_done => match msg {
                Some(ChannelMsg::Data { data }) => {
                    if requests.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(ChannelMsg::Eof) => {
                    client_done = true;
                    let _ = requests.shutdown().await;
                }
                Some(ChannelMsg::Close) | None => return,
                Some(_) => {}
            },
            n = replies.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_client.data_bytes(buf[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
    let _ = to_client.exit_status(0).await;
    let _ = to_client.eof().await;
    let _ = to_client.close().await;
}

/// Where relative SFTP paths start (root's home).
const HOME: &str = "/root";

enum Open {
    File { path: String, append: bool },
    Dir { entries: Vec<File>, sent: bool },
}

/// One SFTP session on one VM.
pub struct SftpHandler {
    vm: String,
    state: SiteState,
    handles: HashMap<String, Open>,
    next: u64,
}

fn status_of(e: FsError) -> StatusReply {
    let code = match e {
        FsError::NotFound | FsError::NotADirectory => StatusCode::NoSuchFile,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Success".to_string(),
        language_tag: "en-US".to_string(),
    }
}

/// The SFTP attributes of an entry.
fn attrs(node: &Node) -> FileAttributes {
    let kind = if node.is_dir() { 0o040000 } else { 0o100000 };
    let mtime = u32::try_from(node.mtime().max(0)).unwrap_or(u32::MAX);
    FileAttributes {
        size: Some(node.size()),
        uid: Some(0),
        user: Some("root".to_string()),
        gid: Some(0),
        group: Some("root".to_string()),
        permissions: Some(kind | node.mode()),
        atime: Some(mtime),
        mtime: Some(mtime),
    }
}

impl SftpHandler {
    /// A session on `vm`.
    pub fn new(vm: &str, state: SiteState) -> Self {
        Self {
            vm: vm.to_string(),
            state,
            handles: HashMap::new(),
            next: 0,
        }
    }

    fn fs<R>(&self, f: impl FnOnce(&mut vfs::Vfs) -> R) -> Option<R> {
        let vm = self.vm.clone();
        self.state.with(|s| s.host_mut(&vm).map(|h| f(&mut h.fs)))
    }

    fn node(&self, path: &str) -> Result<Node, StatusReply> {
        self.fs(|fs| fs.get(path).cloned())
            .flatten()
            .ok_or_else(|| StatusCode::NoSuchFile.with_message("No such file"))
    }

    fn add(&mut self, open: Open) -> String {
        self.next += 1;
        let h = format!("h{}", self.next);
        self.handles.insert(h.clone(), open);
        h
    }

    fn apply_attrs(&self, path: &str, a: &FileAttributes) -> Result<(), StatusReply> {
        self.fs(|fs| -> Result<(), FsError> {
            if let Some(size) = a.size {
                if !fs.is_dir(path) {
                    fs.truncate(path, size)?;
                }
            }
            if let Some(mode) = a.permissions {
                fs.chmod(path, mode & 0o7777)?;
            }
            if let Some(mtime) = a.mtime {
                fs.set_mtime(path, i64::from(mtime))?;
            }
            Ok(())
        })
        .unwrap_or(Err(FsError::NotFound))
        .map_err(status_of)
    }
}

impl russh_sftp::server::Handler for SftpHandler {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.into()
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let p = vfs::normalize(HOME, &path);
        Ok(Name {
            id,
            files: vec![File::dummy(p)],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let node = self.node(&vfs::normalize(HOME, &path))?;
        Ok(Attrs {
            id,
            attrs: attrs(&node),
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.stat(id, path).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        match self.handles.get(&handle) {
            Some(Open::File { path, .. }) => {
                let node = self.node(path)?;
                Ok(Attrs {
                    id,
                    attrs: attrs(&node),
                })
            }
            Some(Open::Dir { .. }) => Ok(Attrs {
                id,
                attrs: FileAttributes {
                    permissions: Some(0o040755),
                    ..Default::default()
                },
            }),
            None => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        self.apply_attrs(&vfs::normalize(HOME, &path), &attrs)?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let path = match self.handles.get(&handle) {
            Some(Open::File { path, .. }) => path.clone(),
            Some(Open::Dir { .. }) => return Ok(ok(id)),
            None => return Err(StatusCode::Failure.with_message("invalid handle")),
        };
        self.apply_attrs(&path, &attrs)?;
        Ok(ok(id))
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let path = vfs::normalize(HOME, &filename);
        let existing = self.fs(|fs| fs.get(&path).cloned()).flatten();
        match existing {
            Some(n) if n.is_dir() => {
                return Err(StatusCode::Failure.with_message("Is a directory"));
            }
            Some(_)
                if pflags.contains(OpenFlags::CREATE) && pflags.contains(OpenFlags::EXCLUDE) =>
            {
                return Err(StatusCode::Failure.with_message("File exists"));
            }
            Some(_) => {
                if pflags.contains(OpenFlags::TRUNCATE) {
                    self.fs(|fs| fs.write(&path, b"", false))
                        .unwrap_or(Err(FsError::NotFound))
                        .map_err(status_of)?;
                }
            }
            None if pflags.contains(OpenFlags::CREATE) => {
                self.fs(|fs| fs.write(&path, b"", false))
                    .unwrap_or(Err(FsError::NotFound))
                    .map_err(status_of)?;
                if let Some(mode) = attrs.permissions {
                    let _ = self.fs(|fs| fs.chmod(&path, mode & 0o7777));
                }
            }
            None => return Err(StatusCode::NoSuchFile.with_message("No such file")),
        }
        let handle = self.add(Open::File {
            path,
            append: pflags.contains(OpenFlags::APPEND),
        });
        Ok(Handle { id, handle })
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let Some(Open::File { path, .. }) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        };
        let path = path.clone();
        let chunk = self
            .fs(|fs| {
                fs.read(&path).map(|d| {
                    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(d.len());
                    let end = start.saturating_add(len as usize).min(d.len());
                    d[start..end].to_vec()
                })
            })
            .unwrap_or(Err(FsError::NotFound))
            .map_err(status_of)?;
        if chunk.is_empty() && len > 0 {
            return Err(StatusCode::Eof.into());
        }
        Ok(Data { id, data: chunk })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let Some(Open::File { path, append }) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        };
        let (path, append) = (path.clone(), *append);
        self.fs(|fs| {
            if append {
                fs.write(&path, &data, true)
            } else {
                fs.write_at(&path, offset, &data)
            }
        })
        .unwrap_or(Err(FsError::NotFound))
        .map_err(status_of)?;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let dir = vfs::normalize(HOME, &path);
        let listing = self
            .fs(|fs| fs.list(&dir))
            .unwrap_or(Err(FsError::NotFound))
            .map_err(status_of)?;
        let mut entries = vec![
            File::new(
                ".",
                FileAttributes {
                    permissions: Some(0o040755),
                    ..Default::default()
                },
            ),
            File::new(
                "..",
                FileAttributes {
                    permissions: Some(0o040755),
                    ..Default::default()
                },
            ),
        ];
        entries.extend(
            listing
                .iter()
                .map(|(name, node)| File::new(name.clone(), attrs(node))),
        );
        let handle = self.add(Open::Dir {
            entries,
            sent: false,
        });
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        match self.handles.get_mut(&handle) {
            Some(Open::Dir { entries, sent }) if !*sent => {
                *sent = true;
                Ok(Name {
                    id,
                    files: std::mem::take(entries),
                })
            }
            Some(Open::Dir { .. }) => Err(StatusCode::Eof.into()),
            _ => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let path = vfs::normalize(HOME, &filename);
        self.fs(|fs| fs.remove(&path, false))
            .unwrap_or(Err(FsError::NotFound))
            .map_err(status_of)?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let path = vfs::normalize(HOME, &path);
        self.fs(|fs| fs.mkdir(&path, false))
            .unwrap_or(Err(FsError::NotFound))
            .map_err(status_of)?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let path = vfs::normalize(HOME, &path);
        self.fs(|fs| fs.rmdir(&path))
            .unwrap_or(Err(FsError::NotFound))
            .map_err(status_of)?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let from = vfs::normalize(HOME, &oldpath);
        let to = vfs::normalize(HOME, &newpath);
        if self.fs(|fs| fs.get(&to).is_some()).unwrap_or(false) {
            return Err(StatusCode::Failure.with_message("File exists"));
        }
        self.fs(|fs| fs.rename(&from, &to))
            .unwrap_or(Err(FsError::NotFound))
            .map_err(status_of)?;
        Ok(ok(id))
    }
}
