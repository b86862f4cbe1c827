//! The lab's keys, kept in its directory so that restarting the lab does not
//! change them (the portal's known_hosts stays valid):
//!
//! - `keys/<vm>_ed25519`: each VM's host key;
//! - `keys/alt/<vm>_ed25519`: the key a VM presents under the
//!   host-key-changed fault;
//! - `id_ed25519` (+ `.pub`): the one client key the VMs accept.
//!
//! All are ed25519 in OpenSSH format, private files with mode 0600.

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{PrivateKey, PublicKey};
use std::path::{Path, PathBuf};

/// Why a key could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the key {path} is not an OpenSSH private key: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write the key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode a key: {0}")]
    Encode(String),
}

/// A new ed25519 key with `comment`.
pub fn generate(comment: &str) -> PrivateKey {
    let seed: [u8; 32] = rand::random();
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    key
}

fn write_private(path: &Path, text: &str) -> Result<(), KeyError> {
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_err)?;
    }
    std::fs::write(path, text).map_err(write_err)?;
    set_private_mode(path).map_err(write_err)
}

#[cfg(unix)]
fn set_private_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private_mode(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The public key in one OpenSSH line (`ssh-ed25519 AAAA... comment`).
pub fn public_line(key: &PublicKey) -> Result<String, KeyError> {
    key.to_openssh()
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// Loads the key at `path`, or creates it (with `comment`) if there is none.
/// The public half is written beside it as `<path>.pub` when `with_pub`.
pub fn load_or_create(path: &Path, comment: &str, with_pub: bool) -> Result<PrivateKey, KeyError> {
    let key = if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PrivateKey::from_openssh(text.as_bytes()).map_err(|e| KeyError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
    } else {
        let key = generate(comment);
        let text = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        write_private(path, &text)?;
        key
    };
    if with_pub {
        let mut pub_path = path.as_os_str().to_owned();
        pub_path.push(".pub");
        let pub_path = PathBuf::from(pub_path);
        let line = format!("{}\n", public_line(key.public_key())?);
        std::fs::write(&pub_path, line).map_err(|source| KeyError::Write {
            path: pub_path.clone(),
            source,
        })?;
    }
    Ok(key)
}

/// A VM's two host keys.
#[derive(Clone)]
pub struct HostKeys {
    pub main: PrivateKey,
    /// What the VM presents under the host-key-changed fault.
    pub alt: PrivateKey,
}

/// Loads or creates the host keys of `vm` under `dir/keys`.
pub fn host_keys(dir: &Path, vm: &str) -> Result<HostKeys, KeyError> {
    Ok(HostKeys {
        main: load_or_create(
            &dir.join("keys").join(format!("{vm}_ed25519")),
            &format!("root@{vm}"),
            false,
        )?,
        alt: load_or_create(
            &dir.join("keys").join("alt").join(format!("{vm}_ed25519")),
            &format!("root@{vm} (changed)"),
            false,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        let a = load_or_create(&path, "lab", true).unwrap();
        let b = load_or_create(&path, "lab", true).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let pub_line = std::fs::read_to_string(dir.path().join("id_ed25519.pub")).unwrap();
        assert!(pub_line.starts_with("ssh-ed25519 "));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(
            load_or_create(&path, "lab", false),
            Err(KeyError::Parse { .. })
        ));
        let hk = host_keys(dir.path(), "cluman").unwrap();
        assert_ne!(hk.main.public_key(), hk.alt.public_key());
    }
}
