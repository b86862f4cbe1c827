//! The Policy Builder SVN repositories (pcrfclient01 is the master, pcrfclient02
//! the replica). A repository is a directory in its VM's filesystem, laid out
//! like a real FSFS repository where it matters: `db/uuid`, `db/current`, and the
//! revision-0 properties in `db/revprops/0/0` (one `name=value` per line here,
//! a simplification). So `rm -fr /var/www/svn/repos` really removes it and
//! `svnadmin create` really makes an empty one.

use super::vfs::{normalize, Vfs};
use super::Site;
use std::collections::BTreeMap;

/// Where the repository lives on pcrfclient01 and pcrfclient02.
pub const REPO_PATH: &str = "/var/www/svn/repos";
/// The VMs that hold a repository.
pub const REPO_HOSTS: [&str; 2] = ["pcrfclient01", "pcrfclient02"];
/// The top-level directories of the Policy Builder repository.
pub const REPO_DIRS: [&str; 2] = ["configuration", "run"];

/// What the lab knows about a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    pub uuid: String,
    pub revision: u64,
    /// Properties of revision 0 (svnsync keeps its state there).
    pub revprops0: BTreeMap<String, String>,
    /// When the youngest revision was made.
    pub changed: i64,
}

/// A repository found at `path` in `fs`, if there is one.
pub fn read_repo(fs: &Vfs, path: &str) -> Option<Repo> {
    let path = normalize("/", path);
    fs.read(&format!("{path}/format")).ok()?;
    let uuid = fs
        .read_string(&format!("{path}/db/uuid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .to_string();
    let current = fs.get(&format!("{path}/db/current"))?;
    let revision = fs
        .read_string(&format!("{path}/db/current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let revprops0 = fs
        .read_string(&format!("{path}/db/revprops/0/0"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(Repo {
        uuid,
        revision,
        revprops0,
        changed: current.mtime(),
    })
}

/// Writes a repository's files at `path` (creating the directories).
pub fn write_repo(fs: &mut Vfs, path: &str, repo: &Repo) {
    let path = normalize("/", path);
    fs.put(&format!("{path}/format"), "5\n", 0o444);
    fs.put(
        &format!("{path}/db/uuid"),
        format!("{}\n", repo.uuid),
        0o644,
    );
    fs.put(
        &format!("{path}/db/current"),
        format!("{}\n", repo.revision),
        0o644,
    );
    let _ = fs.set_mtime(&format!("{path}/db/current"), repo.changed);
    let props: String = repo
        .revprops0
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    fs.put(&format!("{path}/db/revprops/0/0"), props, 0o644);
    fs.put(
        &format!("{path}/conf/svnserve.conf"),
        "[general]\nanon-access = none\nauth-access = write\n",
        0o644,
    );
    for dir in ["hooks", "locks"] {
        let _ = fs.mkdir(&format!("{path}/{dir}"), true);
    }
}

/// A new random repository UUID.
pub fn new_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A repository URL resolved to the VM that serves it and the path inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: &'static str,
    /// The URL up to the repository root, as `svn info` prints it.
    pub root_url: String,
    /// What follows the root (`configuration`), empty for the root.
    pub inner: String,
}

/// Resolves `http://pcrfclientNN/repos[/...]`. `repos-proxy-sync` on pcrfclient02
/// is the Apache proxy that forwards to pcrfclient01's repository (how svnsync
/// reaches the master).
pub fn resolve_url(url: &str) -> Option<Target> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host_name = authority.split(':').next().unwrap_or(authority);
    let host = REPO_HOSTS.iter().find(|h| **h == host_name)?;
    let path = path.trim_end_matches('/');
    let (repo, inner) = path.split_once('/').unwrap_or((path, ""));
    let serving = match repo {
        "repos" => *host,
        "repos-proxy-sync" if *host == "pcrfclient02" => "pcrfclient01",
        _ => return None,
    };
    Some(Target {
        host: serving,
        root_url: format!("http://{authority}/{repo}"),
        inner: inner.to_string(),
    })
}

impl Site {
    /// The repository on a VM, if it exists.
    pub fn svn_repo(&self, host: &str) -> Option<Repo> {
        self.host(host).and_then(|h| read_repo(&h.fs, REPO_PATH))
    }

    /// Replaces the repository on a VM.
    pub fn set_svn_repo(&mut self, host: &str, repo: &Repo) {
        if let Some(h) = self.host_mut(host) {
            write_repo(&mut h.fs, REPO_PATH, repo);
        }
    }

    /// Whether both repositories exist, share a UUID and a revision, and the
    /// master records where it syncs from.
    pub fn svn_in_sync(&self) -> bool {
        match (self.svn_repo("pcrfclient01"), self.svn_repo("pcrfclient02")) {
            (Some(a), Some(b)) => {
                a.uuid == b.uuid
                    && a.revision == b.revision
                    && a.revprops0.contains_key("svn:sync-from-url")
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_to_the_serving_vm() {
        let t = resolve_url("http://pcrfclient01/repos/configuration").unwrap();
        assert_eq!(
            (t.host, t.root_url.as_str(), t.inner.as_str()),
            ("pcrfclient01", "http://pcrfclient01/repos", "configuration")
        );
        assert_eq!(
            resolve_url("http://pcrfclient02/repos-proxy-sync")
                .unwrap()
                .host,
            "pcrfclient01"
        );
        assert!(resolve_url("http://qns01/repos").is_none());
        assert!(resolve_url("ftp://pcrfclient01/repos").is_none());
    }

    #[test]
    fn repositories_are_files() {
        let mut fs = Vfs::new();
        assert!(read_repo(&fs, REPO_PATH).is_none());
        let repo = Repo {
            uuid: new_uuid(),
            revision: 7,
            revprops0: [(
                "svn:sync-from-url".to_string(),
                "http://x/repos".to_string(),
            )]
            .into(),
            changed: 1_700_000_000,
        };
        write_repo(&mut fs, REPO_PATH, &repo);
        assert_eq!(read_repo(&fs, REPO_PATH), Some(repo));
        assert_eq!(new_uuid().len(), 36);
    }
}
