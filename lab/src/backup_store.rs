//! Sample files for the portal's backup store, laid out as the runbooks'
//! `store = "{site}/{date}/..."` endpoints expect, made from a healthy site
//! with the same code the simulated tools use (so an import of a seeded
//! archive behaves exactly like an import of one the lab exported).

use crate::archive::{self, Entry};
use crate::commands::{cps, mongo};
use crate::outputs;
use crate::state::topology::{PATCH_COMPONENT, PATCH_DIR};
use crate::state::{initial, SiteState};
use std::io;
use std::path::{Path, PathBuf};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Writes the sample backup of `site` made on `date` (YYYY-MM-DD) under
/// `store`; returns the paths written.
pub fn seed(store: &Path, site: &str, date: &str) -> io::Result<Vec<PathBuf>> {
    let site_ok = !site.is_empty()
        && site
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !site_ok {
        return Err(invalid(format!(
            "site name {site:?} must be letters, digits, '-' and '_'"
        )));
    }
    if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
        return Err(invalid(format!(
            "{date:?} is not a date written YYYY-MM-DD"
        )));
    }
    let state = SiteState::new();
    let dir = store.join(site).join(date);
    std::fs::create_dir_all(&dir)?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();

    let all = state
        .with(|s| cps::export_for_seed(s, &["all"]))
        .map_err(invalid)?;
    files.push((
        format!("{site}_backup_all_{date}.tar.gz"),
        archive::build_tar_gz(&all)?,
    ));
    let svn_etc = state
        .with(|s| cps::export_for_seed(s, &["svn", "etc", "grafanadb", "auth-htpasswd", "haproxy"]))
        .map_err(invalid)?;
    files.push((
        format!("{site}_backup_svn_etc_grafanadb_haproxy_{date}.tar.gz"),
        archive::build_tar_gz(&svn_etc)?,
    ));
    let dump = state.with(|s| mongo::dump_entries(s, ""));
    files.push((
        format!("env_export_{date}.tgz"),
        archive::build_tar_gz(&dump)?,
    ));

    let patches: Vec<Entry> = state.with(|s| {
        let Some(c) = s.host("cluman") else {
            return Vec::new();
        };
        let root = format!("{PATCH_DIR}/{PATCH_COMPONENT}");
        c.fs.walk(&root)
            .into_iter()
            .filter_map(|p| {
                let node = c.fs.get(&p)?;
                Some(Entry {
                    name: p.trim_start_matches('/').to_string(),
                    data: c.fs.read(&p).map(<[u8]>::to_vec).unwrap_or_default(),
                    mode: node.mode(),
                    mtime: node.mtime(),
                    is_dir: node.is_dir(),
                })
            })
            .collect()
    });
    files.push((
        format!("{site}_patches_{date}.tgz"),
        archive::build_tar_gz(&patches)?,
    ));

    for host in ["cluman", "pcrfclient01"] {
        files.push((
            format!("crontab_{host}.txt"),
            initial::crontab(host)
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
        ));
    }
    let xml = state.with(|s| outputs::esc_config(s)).join("\n") + "\n";
    files.push(("esc_config.xml".to_string(), xml.into_bytes()));
    for host in ["lb01", "lb02", "pcrfclient01", "pcrfclient02"] {
        let text = state.with(|s| {
            let Some(h) = s.host(host) else {
                return String::new();
            };
            let route_files: Vec<String> =
                h.fs.list("/etc/sysconfig/network-scripts")
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(n, _)| n.starts_with("route-"))
                    .filter_map(|(n, _)| {
                        h.fs.read_string(&format!("/etc/sysconfig/network-scripts/{n}"))
                            .ok()
                    })
                    .collect();
            let mut t = outputs::route_table(&h.ip, &route_files, true).join("\n");
            t.push('\n');
            t.push_str(&route_files.concat());
            t
        });
        files.push((format!("routes_{host}.txt"), text.into_bytes()));
    }
    // A stand-in for the Cluster Manager snapshot (a qcow2 header and padding):
    // the real one is ~10 GB and belongs to the OpenStack side.
    let mut qcow = b"QFI\xfb\x00\x00\x00\x03".to_vec();
    qcow.resize(64 * 1024, 0);
    files.push(("cluman_snapshot.qcow2".to_string(), qcow));

    let mut written = Vec::new();
    for (name, data) in files {
        let path = dir.join(name);
        std::fs::write(&path, data)?;
        written.push(path);
    }
    Ok(written)
}
