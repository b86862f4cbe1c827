//! The files a client needs to reach the lab: `known_hosts`, an OpenSSH
//! `ssh_config`, and the portal's sites file (`server/src/exec/site.rs`
//! format). Pure text; [`crate::Lab::write_out`] writes them.

use crate::LabHost;
use std::path::Path;

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One line per VM, trusted under both `[name]:port` and `[127.0.0.1]:port`
/// (the portal checks both names; OpenSSH looks up the address it dials).
pub fn known_hosts(hosts: &[(LabHost, String)]) -> String {
    let mut s = String::from("# Host keys of the Recovery Portal lab's VMs\n");
    for (h, key_line) in hosts {
        s.push_str(&format!(
            "[{name}]:{port},[127.0.0.1]:{port} {key_line}\n",
            name = h.name,
            port = h.port
        ));
    }
    s
}

/// An OpenSSH client configuration: `ssh -F ssh_config <vm>`.
pub fn ssh_config(hosts: &[LabHost], user: &str, key: &Path, known_hosts: &Path) -> String {
    let jump = hosts.iter().find(|h| h.jump).map(|h| h.name.as_str());
    let mut s = String::from(
        "# The Recovery Portal lab: ssh -F <this file> <vm>\n# Every VM but the jump host is reached through it, as on a real site.\n",
    );
    for h in hosts {
        s.push_str(&format!("\nHost {}\n", h.name));
        s.push_str("    HostName 127.0.0.1\n");
        s.push_str(&format!("    Port {}\n", h.port));
        s.push_str(&format!("    User {user}\n"));
        s.push_str(&format!("    IdentityFile {}\n", key.display()));
        s.push_str("    IdentitiesOnly yes\n");
        s.push_str(&format!(
            "    UserKnownHostsFile {}\n",
            known_hosts.display()
        ));
        s.push_str("    GlobalKnownHostsFile /dev/null\n");
        s.push_str("    StrictHostKeyChecking yes\n");
        s.push_str("    UpdateHostKeys no\n");
        s.push_str("    PasswordAuthentication no\n");
        if let (false, Some(j)) = (h.jump, jump) {
            s.push_str(&format!("    ProxyJump {j}\n"));
        }
    }
    s
}

/// The portal's sites file for one site.
pub fn sites_toml(
    site: &str,
    hosts: &[LabHost],
    user: &str,
    key: &Path,
    known_hosts: &Path,
    clouds_file: &Path,
) -> String {
    let jump = hosts
        .iter()
        .find(|h| h.jump)
        .map(|h| h.name.clone())
        .unwrap_or_default();
    let mut s = String::from(
        "# The Recovery Portal lab as a site (generated; the ports change with every lab start).\n\n",
    );
    s.push_str("[[sites]]\n");
    s.push_str(&format!("name = {}\n", toml_string(site)));
    s.push_str(&format!(
        "description = {}\n",
        toml_string("Recovery Portal lab: a simulated Ultra-M CPS site on 127.0.0.1")
    ));
    s.push_str(&format!("user = {}\n", toml_string(user)));
    s.push_str(&format!(
        "key = {}\n",
        toml_string(&key.display().to_string())
    ));
    s.push_str(&format!(
        "known_hosts = {}\n",
        toml_string(&known_hosts.display().to_string())
    ));
    s.push_str(&format!("jump_host = {}\n", toml_string(&jump)));
    s.push_str("cloud = \"lab\"\n");
    s.push_str(&format!(
        "clouds_file = {}\n",
        toml_string(&clouds_file.display().to_string())
    ));
    for h in hosts {
        s.push_str("\n[[sites.hosts]]\n");
        s.push_str(&format!("name = {}\n", toml_string(&h.name)));
        s.push_str("address = \"127.0.0.1\"\n");
        s.push_str(&format!("port = {}\n", h.port));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<LabHost> {
        vec![
            LabHost {
                name: "cluman".into(),
                port: 4000,
                jump: true,
            },
            LabHost {
                name: "qns01".into(),
                port: 4001,
                jump: false,
            },
        ]
    }

    #[test]
    fn ssh_config_jumps_through_cluman() {
        let c = ssh_config(
            &hosts(),
            "root",
            Path::new("/l/id_ed25519"),
            Path::new("/l/known_hosts"),
        );
        let qns = c.split("Host qns01").nth(1).unwrap_or_default();
        assert!(qns.contains("ProxyJump cluman") && qns.contains("Port 4001"));
        let cluman = c.split("Host cluman").nth(1).unwrap_or_default();
        assert!(!cluman
            .split("Host qns01")
            .next()
            .unwrap_or_default()
            .contains("ProxyJump"));
    }

    #[test]
    fn sites_file_is_toml_with_every_host() {
        let s = sites_toml(
            "lab",
            &hosts(),
            "root",
            Path::new("/l/id \"x\""),
            Path::new("/l/kh"),
            Path::new("/l/clouds.yaml"),
        );
        let v: toml::Value = toml::from_str(&s).unwrap();
        let site = &v["sites"][0];
        assert_eq!(site["jump_host"].as_str(), Some("cluman"));
        assert_eq!(site["key"].as_str(), Some("/l/id \"x\""));
        assert_eq!(site["hosts"][1]["port"].as_integer(), Some(4001));
        assert_eq!(site["cloud"].as_str(), Some("lab"));
        assert_eq!(site["clouds_file"].as_str(), Some("/l/clouds.yaml"));
    }
}
