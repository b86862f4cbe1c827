//! The simulated cloud's records: servers, flavors, images (with where their
//! bytes are), tokens, and the helpers every service shares (ids, times,
//! generated image bytes).

use crate::state::Host;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The region of every endpoint.
pub const REGION: &str = "RegionOne";
/// The lab's OpenStack user, project and domain.
pub const USERNAME: &str = "admin";
pub const DEFAULT_PASSWORD: &str = "lab-secret";
pub const PROJECT: &str = "admin";
pub const DOMAIN: &str = "Default";
pub const DOMAIN_ID: &str = "default";
/// The application credential the lab accepts (`methods: ["application_credential"]`).
pub const APP_CREDENTIAL_NAME: &str = "recovery-portal";
pub const APP_CREDENTIAL_SECRET: &str = "lab-app-secret";
/// The Heat stack of the CPS deployment.
pub const STACK_NAME: &str = "cps";
/// The network the servers' addresses are on.
pub const NETWORK: &str = "internal";
/// The compute host every server runs on.
pub const COMPUTE_HOST: &str = "compute-0";
/// The highest compute microversion the lab answers.
pub const MAX_MICROVERSION: (u32, u32) = (2, 96);

/// A stable UUID-shaped id from a name (same name, same id, every start).
pub fn stable_id(kind: &str, name: &str) -> String {
    let d = Sha256::digest(format!("{kind}:{name}").as_bytes());
    uuid_from(&d[..16])
}

/// A stable 32-hex id (Keystone's style) from a name.
pub fn stable_hex(kind: &str, name: &str) -> String {
    hex::encode(&Sha256::digest(format!("{kind}:{name}").as_bytes())[..16])
}

/// A new random UUID (version 4 layout).
pub fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_from(&b)
}

fn uuid_from(b: &[u8]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Now as Nova and Glance print it (`2026-11-27T01:52:02Z`).
pub fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time as Keystone prints it (`2026-11-27T01:52:02.000000Z`).
pub fn keystone_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A flavor.
#[derive(Clone, Debug)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram: u64,
    pub disk: u64,
}

/// The flavors of the site, one per VM role.
pub fn flavors() -> Vec<Flavor> {
    [
        ("cps-cluman", 4, 8192, 100),
        ("cps-pcrfclient", 4, 16384, 100),
        ("cps-sessionmgr", 4, 24576, 100),
        ("cps-lb", 8, 16384, 100),
        ("cps-qns", 8, 16384, 60),
        ("esc", 4, 8192, 40),
    ]
    .into_iter()
    .map(|(name, vcpus, ram, disk)| Flavor {
        id: stable_id("flavor", name),
        name: name.to_string(),
        vcpus,
        ram,
        disk,
    })
    .collect()
}

/// The flavor name a lab VM runs with.
pub fn flavor_for(role: crate::state::topology::Role) -> &'static str {
    use crate::state::topology::Role;
    match role {
        Role::Cluman => "cps-cluman",
        Role::Pcrfclient => "cps-pcrfclient",
        Role::Sessionmgr => "cps-sessionmgr",
        Role::Lb => "cps-lb",
        Role::Qns => "cps-qns",
        Role::Esc => "esc",
    }
}

/// A fault recorded on a server in ERROR.
#[derive(Clone, Debug)]
pub struct ServerFault {
    pub code: u16,
    pub message: String,
    pub created: String,
}

/// A Nova server.
#[derive(Clone, Debug)]
pub struct Server {
    pub id: String,
    pub name: String,
    /// The lab VM (SSH host) this server is, if its name is one.
    pub vm: Option<String>,
    pub status: String,
    pub task_state: Option<String>,
    pub vm_state: String,
    /// 1 running, 4 shutdown, 0 no state.
    pub power_state: u8,
    pub image_id: String,
    pub flavor_id: String,
    pub ip: String,
    pub availability_zone: String,
    pub created: String,
    pub updated: String,
    pub launched_at: Option<String>,
    pub fault: Option<ServerFault>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Every (status, task_state) the server went through, in order.
    pub history: Vec<(String, Option<String>)>,
}

impl Server {
    /// Changes status and task state, noting the change in the history.
    pub fn set(&mut self, status: &str, task: Option<&str>) {
        self.status = status.to_string();
        self.task_state = task.map(str::to_string);
        self.updated = now_iso();
        let entry = (self.status.clone(), self.task_state.clone());
        if self.history.last() != Some(&entry) {
            self.history.push(entry);
        }
    }
}

/// Where an image's bytes are.
#[derive(Clone, Debug)]
pub enum ImageData {
    /// Not uploaded yet.
    None,
    /// A file in the lab directory.
    File(PathBuf),
    /// Deterministic pseudo-random bytes made when read.
    Generated { seed: u64 },
}

/// A Glance image.
#[derive(Clone, Debug)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub status: String,
    pub visibility: String,
    pub protected: bool,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub size: Option<u64>,
    pub checksum: Option<String>,
    pub os_hash_value: Option<String>,
    pub min_disk: u64,
    pub min_ram: u64,
    pub created_at: String,
    pub updated_at: String,
    pub tags: Vec<String>,
    /// Custom properties (`image_type`, `instance_uuid`, ...).
    pub properties: serde_json::Map<String, serde_json::Value>,
    pub data: ImageData,
    /// For a snapshot: the VM as it was when the snapshot was taken.
    pub captured: Option<Box<Host>>,
}

/// An issued token.
#[derive(Clone, Debug)]
pub struct Token {
    pub issued: Instant,
    pub expires: Instant,
    /// Whether it is scoped to the project (only those reach the services).
    pub scoped: bool,
}

/// The settings of the simulated cloud that tests and operators change.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How long a token lives.
    pub token_lifetime: Duration,
    /// How long each intermediate state of an action lasts.
    pub step: Duration,
}

/// Deterministic pseudo-random bytes: byte `i` of the stream `seed` is the same
/// at every read, so any range can be produced on its own.
pub fn generated_fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let block = splitmix(seed ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&block[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// md5 and sha512 (hex) of a generated stream of `size` bytes.
pub fn generated_hashes(seed: u64, size: u64) -> (String, String) {
    use md5::Md5;
    use sha2::Sha512;
    let mut md5 = Md5::new();
    let mut sha = Sha512::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(buf.len() as u64) as usize;
        generated_fill(seed, pos, &mut buf[..n]);
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
        pos += n as u64;
    }
    (hex::encode(md5.finalize()), hex::encode(sha.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_bytes_are_the_same_from_any_offset() {
        let mut whole = vec![0u8; 1000];
        generated_fill(7, 0, &mut whole);
        let mut part = vec![0u8; 333];
        generated_fill(7, 501, &mut part);
        assert_eq!(&whole[501..834], &part[..]);
        let mut other = vec![0u8; 1000];
        generated_fill(8, 0, &mut other);
        assert_ne!(whole, other);
    }

    #[test]
    fn ids_are_stable_and_uuid_shaped() {
        assert_eq!(stable_id("server", "qns01"), stable_id("server", "qns01"));
        assert_eq!(new_id().len(), 36);
        assert_eq!(stable_hex("user", "admin").len(), 32);
    }
}
