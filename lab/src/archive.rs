//! Real `.tar.gz` archives of virtual files, so that backups the lab writes can be
//! opened with the real `tar` once the portal has copied them out, and archives
//! the portal copies in can be unpacked by the lab's `tar`.

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Read;

/// One archive member. Names are relative (`etc/broadhop/qns.conf`); directories
/// end in `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub mtime: i64,
    pub is_dir: bool,
}

impl Entry {
    /// A regular file.
    pub fn file(name: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            data: data.into(),
            mode: 0o644,
            mtime: chrono::Utc::now().timestamp(),
            is_dir: false,
        }
    }
}

/// Builds a gzip-compressed tar archive.
pub fn build_tar_gz(entries: &[Entry]) -> std::io::Result<Vec<u8>> {
    let encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for e in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(e.mode);
        header.set_mtime(u64::try_from(e.mtime).unwrap_or(0));
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("root")?;
        header.set_groupname("root")?;
        if e.is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            let name = format!("{}/", e.name.trim_end_matches('/'));
            builder.append_data(&mut header, name, std::io::empty())?;
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(e.data.len() as u64);
            builder.append_data(&mut header, &e.name, e.data.as_slice())?;
        }
    }
    builder.into_inner()?.finish()
}

/// Reads a tar archive, gzip-compressed or not.
pub fn read_tar(bytes: &[u8]) -> std::io::Result<Vec<Entry>> {
    let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzipped {
        Box::new(GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let header = entry.header();
        let is_dir = header.entry_type().is_dir();
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().map(|m| m as i64).unwrap_or(0);
        let mut data = Vec::new();
        if !is_dir {
            entry.read_to_end(&mut data)?;
        }
        out.push(Entry {
            name: name.trim_end_matches('/').to_string(),
            data,
            mode,
            mtime,
            is_dir,
        });
    }
    if out.is_empty() && !bytes.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "This does not look like a tar archive",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_round_trip() {
        let mut dir = Entry::file("etc/broadhop", "");
        dir.is_dir = true;
        let bytes = build_tar_gz(&[dir, Entry::file("etc/broadhop/qns.conf", "-Dx=1\n")]).unwrap();
        let back = read_tar(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back[0].is_dir);
        assert_eq!(back[1].name, "etc/broadhop/qns.conf");
        assert_eq!(back[1].data, b"-Dx=1\n");
        assert!(read_tar(b"not an archive at all, surely").is_err());
    }
}
