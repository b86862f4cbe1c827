//! A small in-memory filesystem, one per VM. Commands, SFTP and the control API
//! all go through it, so a file written by one is what the others see.
//!
//! Paths are absolute and normalised (`/a/b`, no trailing slash, `.` and `..`
//! resolved); [`normalize`] turns what a user typed into that form. Directories
//! are explicit entries: a file can only be created in an existing directory,
//! as on a real system (`> /missing/x` fails).

use std::collections::BTreeMap;

/// One entry of the filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File {
        data: Vec<u8>,
        mode: u32,
        mtime: i64,
    },
    Dir {
        mode: u32,
        mtime: i64,
    },
}

impl Node {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self, Node::Dir { .. })
    }
    /// The permission bits.
    pub fn mode(&self) -> u32 {
        match self {
            Node::File { mode, .. } | Node::Dir { mode, .. } => *mode,
        }
    }
    /// Modification time, seconds since the epoch.
    pub fn mtime(&self) -> i64 {
        match self {
            Node::File { mtime, .. } | Node::Dir { mtime, .. } => *mtime,
        }
    }
    /// Size in bytes (4096 for directories, as `ls -l` shows).
    pub fn size(&self) -> u64 {
        match self {
            Node::File { data, .. } => data.len() as u64,
            Node::Dir { .. } => 4096,
        }
    }
}

/// Why a filesystem operation failed; `Display` gives the libc wording that
/// tools put after the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("No such file or directory")]
    NotFound,
    #[error("Not a directory")]
    NotADirectory,
    #[error("Is a directory")]
    IsADirectory,
    #[error("File exists")]
    Exists,
    #[error("Directory not empty")]
    NotEmpty,
    #[error("Invalid argument")]
    Invalid,
}

/// The filesystem of one VM.
#[derive(Clone, Debug, Default)]
pub struct Vfs {
    nodes: BTreeMap<String, Node>,
}

/// Seconds since the epoch, for modification times.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Resolves `path` against `cwd` into the normalised absolute form.
pub fn normalize(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The directory part of a normalised path (`/` for top-level entries).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a normalised path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn child_prefix(dir: &str) -> String {
    if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    }
}

impl Vfs {
    /// A filesystem with only `/`.
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "/".to_string(),
            Node::Dir {
                mode: 0o755,
                mtime: now(),
            },
        );
        Self { nodes }
    }

    /// The entry at a normalised path.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Whether a directory exists there.
    pub fn is_dir(&self, path: &str) -> bool {
        self.get(path).is_some_and(Node::is_dir)
    }

    /// Whether a regular file exists there.
    pub fn is_file(&self, path: &str) -> bool {
        self.get(path).is_some_and(|n| !n.is_dir())
    }

    /// A file's content.
    pub fn read(&self, path: &str) -> Result<&[u8], FsError> {
        match self.nodes.get(path) {
            Some(Node::File { data, .. }) => Ok(data),
            Some(Node::Dir { .. }) => Err(FsError::IsADirectory),
            None => Err(self.missing(path)),
        }
    }

    /// A file's content as text (lossy).
    pub fn read_string(&self, path: &str) -> Result<String, FsError> {
        self.read(path)
            .map(|d| String::from_utf8_lossy(d).into_owned())
    }

    /// Distinguishes "no such file" from "a parent is a file".
    fn missing(&self, path: &str) -> FsError {
        let mut p = parent(path);
        loop {
            match self.nodes.get(p) {
                Some(Node::File { .. }) => return FsError::NotADirectory,
                Some(Node::Dir { .. }) => return FsError::NotFound,
                None if p == "/" => return FsError::NotFound,
                None => p = parent(p),
            }
        }
    }

    fn check_parent(&self, path: &str) -> Result<(), FsError> {
        if path == "/" {
            return Err(FsError::Invalid);
        }
        match self.nodes.get(parent(path)) {
            Some(Node::Dir { .. }) => Ok(()),
            Some(Node::File { .. }) => Err(FsError::NotADirectory),
            None => Err(self.missing(parent(path))),
        }
    }

    /// Writes (or appends to) a file; its directory must exist.
    pub fn write(&mut self, path: &str, data: &[u8], append: bool) -> Result<(), FsError> {
        self.check_parent(path)?;
        match self.nodes.get_mut(path) {
            Some(Node::Dir { .. }) => Err(FsError::IsADirectory),
            Some(Node::File {
                data: old, mtime, ..
            }) => {
                if append {
                    old.extend_from_slice(data);
                } else {
                    *old = data.to_vec();
                }
                *mtime = now();
                Ok(())
            }
            None => {
                self.nodes.insert(
                    path.to_string(),
                    Node::File {
                        data: data.to_vec(),
                        mode: 0o644,
                        mtime: now(),
                    },
                );
                Ok(())
            }
        }
    }

    /// Writes `data` at `offset`, growing the file with zeros if needed (SFTP).
    pub fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), FsError> {
        match self.nodes.get_mut(path) {
            Some(Node::File {
                data: old, mtime, ..
            }) => {
                let start = usize::try_from(offset).map_err(|_| FsError::Invalid)?;
                let end = start.checked_add(data.len()).ok_or(FsError::Invalid)?;
                if old.len() < end {
                    old.resize(end, 0);
                }
                old[start..end].copy_from_slice(data);
                *mtime = now();
                Ok(())
            }
            Some(Node::Dir { .. }) => Err(FsError::IsADirectory),
            None => Err(self.missing(path)),
        }
    }

    /// Cuts or extends (with zeros) a file to `size` bytes.
    pub fn truncate(&mut self, path: &str, size: u64) -> Result<(), FsError> {
        match self.nodes.get_mut(path) {
            Some(Node::File { data, mtime, .. }) => {
                data.resize(usize::try_from(size).map_err(|_| FsError::Invalid)?, 0);
                *mtime = now();
                Ok(())
            }
            Some(Node::Dir { .. }) => Err(FsError::IsADirectory),
            None => Err(self.missing(path)),
        }
    }

    /// Creates parents as needed, then writes the file (for seeding content).
    pub fn put(&mut self, path: &str, data: impl AsRef<[u8]>, mode: u32) {
        let path = normalize("/", path);
        let _ = self.mkdir(parent(&path), true);
        self.nodes.insert(
            path,
            Node::File {
                data: data.as_ref().to_vec(),
                mode,
                mtime: now(),
            },
        );
    }

    /// Sets the permission bits.
    pub fn chmod(&mut self, path: &str, new_mode: u32) -> Result<(), FsError> {
        match self.nodes.get_mut(path) {
            Some(Node::File { mode, .. }) | Some(Node::Dir { mode, .. }) => {
                *mode = new_mode & 0o7777;
                Ok(())
            }
            None => Err(self.missing(path)),
        }
    }

    /// Sets the modification time.
    pub fn set_mtime(&mut self, path: &str, when: i64) -> Result<(), FsError> {
        match self.nodes.get_mut(path) {
            Some(Node::File { mtime, .. }) | Some(Node::Dir { mtime, .. }) => {
                *mtime = when;
                Ok(())
            }
            None => Err(self.missing(path)),
        }
    }

    /// Creates a directory (and its parents with `parents`, like `mkdir -p`).
    pub fn mkdir(&mut self, path: &str, parents: bool) -> Result<(), FsError> {
        match self.nodes.get(path) {
            Some(Node::Dir { .. }) if parents => return Ok(()),
            Some(Node::Dir { .. }) => return Err(FsError::Exists),
            Some(Node::File { .. }) => return Err(FsError::Exists),
            None => {}
        }
        if parents {
            let p = parent(path);
            if p != path {
                self.mkdir(p, true)?;
            }
        } else {
            self.check_parent(path)?;
        }
        if self.is_file(parent(path)) {
            return Err(FsError::NotADirectory);
        }
        self.nodes.insert(
            path.to_string(),
            Node::Dir {
                mode: 0o755,
                mtime: now(),
            },
        );
        Ok(())
    }

    /// The direct children of a directory: (name, entry), in name order.
    pub fn list(&self, dir: &str) -> Result<Vec<(String, Node)>, FsError> {
        match self.nodes.get(dir) {
            Some(Node::Dir { .. }) => {}
            Some(Node::File { .. }) => return Err(FsError::NotADirectory),
            None => return Err(self.missing(dir)),
        }
        let prefix = child_prefix(dir);
        Ok(self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.len() > prefix.len() && !k[prefix.len()..].contains('/'))
            .map(|(k, v)| (k[prefix.len()..].to_string(), v.clone()))
            .collect())
    }

    /// `path` and everything under it, parents before children.
    pub fn walk(&self, path: &str) -> Vec<String> {
        let Some(node) = self.nodes.get(path) else {
            return Vec::new();
        };
        let mut out = vec![path.to_string()];
        if node.is_dir() {
            let prefix = child_prefix(path);
            out.extend(
                self.nodes
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter(|(k, _)| k.len() > prefix.len())
                    .map(|(k, _)| k.clone()),
            );
        }
        out
    }

    /// Removes a file, or a directory tree with `recursive`.
    pub fn remove(&mut self, path: &str, recursive: bool) -> Result<(), FsError> {
        if path == "/" {
            return Err(FsError::Invalid);
        }
        match self.nodes.get(path) {
            None => Err(self.missing(path)),
            Some(Node::File { .. }) => {
                self.nodes.remove(path);
                Ok(())
            }
            Some(Node::Dir { .. }) => {
                if !recursive {
                    return Err(FsError::IsADirectory);
                }
                for p in self.walk(path) {
                    self.nodes.remove(&p);
                }
                Ok(())
            }
        }
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, path: &str) -> Result<(), FsError> {
        match self.list(path) {
            Ok(children) if children.is_empty() && path != "/" => {
                self.nodes.remove(path);
                Ok(())
            }
            Ok(_) => Err(FsError::NotEmpty),
            Err(e) => Err(e),
        }
    }

    /// Moves a file or a directory tree.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        if !self.nodes.contains_key(from) {
            return Err(self.missing(from));
        }
        if to == from {
            return Ok(());
        }
        if to.starts_with(&child_prefix(from)) {
            return Err(FsError::Invalid);
        }
        self.check_parent(to)?;
        if self.is_dir(to) {
            return Err(FsError::IsADirectory);
        }
        let moved: Vec<(String, Node)> = self
            .walk(from)
            .into_iter()
            .filter_map(|p| self.nodes.remove(&p).map(|n| (p, n)))
            .collect();
        for (p, n) in moved {
            let new = format!("{to}{}", &p[from.len()..]);
            self.nodes.insert(new, n);
        }
        Ok(())
    }

    /// Copies a file or (with `recursive`) a directory tree to `to`.
    pub fn copy(&mut self, from: &str, to: &str, recursive: bool) -> Result<(), FsError> {
        let node = self
            .nodes
            .get(from)
            .cloned()
            .ok_or_else(|| self.missing(from))?;
        if node.is_dir() && !recursive {
            return Err(FsError::IsADirectory);
        }
        if to.starts_with(&child_prefix(from)) {
            return Err(FsError::Invalid);
        }
        self.check_parent(to)?;
        if !node.is_dir() && self.is_dir(to) {
            return Err(FsError::IsADirectory);
        }
        let copied: Vec<(String, Node)> = self
            .walk(from)
            .into_iter()
            .filter_map(|p| self.nodes.get(&p).map(|n| (p.clone(), n.clone())))
            .collect();
        for (p, n) in copied {
            let new = format!("{to}{}", &p[from.len()..]);
            if n.is_dir() && self.is_dir(&new) {
                continue;
            }
            self.nodes.insert(new, n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalize("/root", "x"), "/root/x");
        assert_eq!(normalize("/root", "../etc/./hosts"), "/etc/hosts");
        assert_eq!(normalize("/", "/var/tmp/"), "/var/tmp");
        assert_eq!(normalize("/", "/.."), "/");
        assert_eq!(parent("/var/tmp"), "/var");
        assert_eq!(parent("/var"), "/");
        assert_eq!(basename("/var/tmp"), "tmp");
    }

    #[test]
    fn files_need_their_directory() {
        let mut fs = Vfs::new();
        assert_eq!(fs.write("/a/b", b"x", false), Err(FsError::NotFound));
        fs.mkdir("/a", false).unwrap();
        fs.write("/a/b", b"x", false).unwrap();
        fs.write("/a/b", b"y", true).unwrap();
        assert_eq!(fs.read("/a/b").unwrap(), b"xy");
        assert_eq!(fs.write("/a/b/c", b"", false), Err(FsError::NotADirectory));
        assert_eq!(fs.read("/a"), Err(FsError::IsADirectory));
    }

    #[test]
    fn trees_are_listed_moved_copied_and_removed() {
        let mut fs = Vfs::new();
        fs.put("/d/one", "1", 0o644);
        fs.put("/d/sub/two", "2", 0o644);
        fs.put("/dx", "not a child", 0o644);
        let names: Vec<String> = fs.list("/d").unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["one", "sub"]);
        fs.copy("/d", "/e", true).unwrap();
        assert_eq!(fs.read("/e/sub/two").unwrap(), b"2");
        fs.rename("/e", "/f").unwrap();
        assert!(fs.get("/e").is_none());
        assert_eq!(fs.read("/f/one").unwrap(), b"1");
        assert_eq!(fs.remove("/f", false), Err(FsError::IsADirectory));
        fs.remove("/f", true).unwrap();
        assert!(fs.get("/f/sub/two").is_none());
        assert!(fs.is_file("/dx"));
        fs.write_at("/dx", 20, b"end").unwrap();
        assert_eq!(fs.read("/dx").unwrap().len(), 23);
    }
}
