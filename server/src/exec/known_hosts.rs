//! Host keys a site trusts, in OpenSSH `known_hosts` format (plain and hashed
//! names, `[host]:port`, `*`/`?` patterns, `!` negation, `@revoked`), so that an
//! admin can import the file operators already have.

use hmac::{Hmac, Mac};
use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

/// What a host key is, given the trusted keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for this host.
    Trusted,
    /// No key of this type is recorded for this host.
    Unknown,
    /// A different key of the same type is recorded: a changed host key, or an attack.
    Changed { line: usize },
    /// The key is marked `@revoked`.
    Revoked,
}

/// A line of a known_hosts file that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("known_hosts line {line}: {message}")]
pub struct KnownHostsError {
    pub line: usize,
    pub message: String,
}

#[derive(Clone, Debug)]
struct Trusted {
    line: usize,
    entry: Entry,
}

/// A set of trusted host keys.
#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    entries: Vec<Trusted>,
}

/// The SHA-256 fingerprint of a key, as OpenSSH prints it (`SHA256:...`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The name OpenSSH looks up: `host`, or `[host]:port` when the port is not 22.
pub fn host_token(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

fn matches(patterns: &HostPatterns, token: &str) -> bool {
    match patterns {
        HostPatterns::Patterns(list) => {
            let mut hit = false;
            for p in list {
                if let Some(negated) = p.strip_prefix('!') {
                    if glob(negated, token) {
                        return false;
                    }
                } else if glob(p, token) {
                    hit = true;
                }
            }
            hit
        }
        HostPatterns::HashedName { salt, hash } => match Hmac::<Sha1>::new_from_slice(salt) {
            Ok(mut mac) => {
                mac.update(token.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Err(_) => false,
        },
    }
}

impl KnownHosts {
    /// Reads a known_hosts file's text; blank lines and comments are skipped.
    pub fn parse(text: &str) -> Result<Self, KnownHostsError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let entry: Entry = trimmed.parse().map_err(|e| KnownHostsError {
                line: i + 1,
                message: format!("not a known_hosts entry ({e})"),
            })?;
            entries.push(Trusted { line: i + 1, entry });
        }
        Ok(Self { entries })
    }

    /// Whether `key` is the trusted key of `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let token = host_token(host, port);
        let mut changed = None;
        let mut trusted = false;
        for t in self
            .entries
            .iter()
            .filter(|t| matches(t.entry.host_patterns(), &token))
        {
            let recorded = t.entry.public_key();
            let same = recorded.key_data() == key.key_data();
            match t.entry.marker() {
                Some(Marker::Revoked) if same => return Verdict::Revoked,
                Some(Marker::Revoked) | Some(Marker::CertAuthority) => {}
                None if same => trusted = true,
                None if recorded.algorithm() == key.algorithm() => {
                    changed = changed.or(Some(t.line))
                }
                None => {}
            }
        }
        match (trusted, changed) {
            (true, _) => Verdict::Trusted,
            (false, Some(line)) => Verdict::Changed { line },
            (false, None) => Verdict::Unknown,
        }
    }

    /// Adds the entries of `other` (keys trusted later, in the portal).
    pub fn extend(&mut self, other: KnownHosts) {
        self.entries.extend(other.entries);
    }

    /// Each entry's hosts (as written; hashed names stay hidden) and key fingerprint.
    pub fn describe(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|t| {
                let hosts = match t.entry.host_patterns() {
                    HostPatterns::Patterns(list) => list.join(","),
                    HostPatterns::HashedName { .. } => "(hashed name)".to_string(),
                };
                let hosts = match t.entry.marker() {
                    Some(Marker::Revoked) => format!("@revoked {hosts}"),
                    Some(Marker::CertAuthority) => format!("@cert-authority {hosts}"),
                    None => hosts,
                };
                (hosts, fingerprint(t.entry.public_key()))
            })
            .collect()
    }

    /// The lines of a known_hosts text that hold entries, each with its key's
    /// fingerprint; an error names the first line that is not an entry.
    pub fn entry_lines(text: &str) -> Result<Vec<(String, String)>, KnownHostsError> {
        let parsed = Self::parse(text)?;
        let lines: Vec<&str> = text.lines().collect();
        Ok(parsed
            .entries
            .iter()
            .map(|t| {
                (
                    lines
                        .get(t.line - 1)
                        .map(|l| l.trim().to_string())
                        .unwrap_or_default(),
                    fingerprint(t.entry.public_key()),
                )
            })
            .collect())
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two ed25519 keys (public halves of throwaway test keys).
    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaQBcGfrwFN2FEwaoMNGh1rZ5eHLQ1MxDYpVJNjqq+m";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBhMtJOCdmYYB+INwjKtL1U0uYX49KZXmWLhSOS7m4j";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn plain_names_ports_and_patterns() {
        let kh = KnownHosts::parse(&format!(
            "# site fra1\ncluman {KEY_A}\n[127.0.0.1]:2222 {KEY_A}\n*.fra1.example,!evil.fra1.example {KEY_B}\n"
        ))
        .unwrap();
        assert_eq!(kh.len(), 3);
        assert_eq!(kh.check("cluman", 22, &key(KEY_A)), Verdict::Trusted);
        assert_eq!(
            kh.check("cluman", 22, &key(KEY_B)),
            Verdict::Changed { line: 2 }
        );
        assert_eq!(kh.check("127.0.0.1", 2222, &key(KEY_A)), Verdict::Trusted);
        assert_eq!(kh.check("127.0.0.1", 22, &key(KEY_A)), Verdict::Unknown);
        assert_eq!(
            kh.check("qns01.fra1.example", 22, &key(KEY_B)),
            Verdict::Trusted
        );
        assert_eq!(
            kh.check("evil.fra1.example", 22, &key(KEY_B)),
            Verdict::Unknown
        );
    }

    #[test]
    fn hashed_names_are_matched() {
        // `ssh-keygen -H` form of "pcrfclient01": HMAC-SHA1 of the name keyed by the salt.
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"pcrfclient01");
        let hash = mac.finalize().into_bytes();
        use russh::keys::ssh_encoding::base64::{Base64, Encoding};
        let line = format!(
            "|1|{}|{} {KEY_A}",
            Base64::encode_string(&salt),
            Base64::encode_string(&hash)
        );
        let kh = KnownHosts::parse(&line).unwrap();
        assert_eq!(kh.check("pcrfclient01", 22, &key(KEY_A)), Verdict::Trusted);
        assert_eq!(kh.check("pcrfclient02", 22, &key(KEY_A)), Verdict::Unknown);
    }

    #[test]
    fn revoked_keys_are_refused_and_bad_lines_located() {
        let kh = KnownHosts::parse(&format!("@revoked * {KEY_A}\ncluman {KEY_A}\n")).unwrap();
        assert_eq!(kh.check("cluman", 22, &key(KEY_A)), Verdict::Revoked);
        let err = KnownHosts::parse("cluman ssh-ed25519 not-base64!\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn glob_matching() {
        assert!(glob("qns0?", "qns01"));
        assert!(!glob("qns0?", "qns010"));
        assert!(glob("*", "anything"));
        assert!(glob("SESSIONMGR*", "sessionmgr02"));
    }
}
