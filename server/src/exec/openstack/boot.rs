//! A new server as a runbook's `server.create` describes it, checked and turned
//! into Nova's request body. Pure: names are resolved to ids by the caller
//! (images in Glance, flavors in Nova, networks in Neutron).
//!
//! The runbook's arguments follow `nova boot`, which the procedure document uses:
//! - `networks`: `NAME[=FIXED_IP]` or `NETWORK_ID[=FIXED_IP]`, comma-separated,
//!   one NIC each, in order;
//! - `block_device`: `DEV=VOLUME_ID[:TYPE[:SIZE[:DELETE_ON_TERMINATE]]]`,
//!   comma-separated, as `--block-device-mapping` takes it;
//! - `config_drive`: `true` or `false`; `security_groups`: comma-separated names;
//!   `user_data`: the text itself (sent base64-encoded).

use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One NIC: a network by name or id, and its fixed IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    pub network: String,
    pub fixed_ip: Option<Ipv4Addr>,
}

/// An existing volume attached at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMapping {
    /// `/dev/vdb`.
    pub device: String,
    pub volume_id: String,
    pub delete_on_termination: bool,
}

/// A checked `server.create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootSpec {
    pub name: String,
    pub image: String,
    pub flavor: String,
    pub nics: Vec<Nic>,
    pub availability_zone: Option<String>,
    pub config_drive: bool,
    pub volumes: Vec<VolumeMapping>,
    pub security_groups: Vec<String>,
    pub user_data: Option<String>,
}

/// Why the arguments do not describe a server; says which argument.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("server.create: `{arg}` {problem}")]
pub struct BootError {
    pub arg: &'static str,
    pub problem: String,
}

fn bad(arg: &'static str, problem: impl Into<String>) -> BootError {
    BootError {
        arg,
        problem: problem.into(),
    }
}

fn list(value: Option<&String>) -> impl Iterator<Item = &str> {
    value
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether a network is named by its id (no Neutron lookup then).
pub fn is_id(network: &str) -> bool {
    is_uuid(network)
}

impl BootSpec {
    /// Reads and checks the runbook's arguments.
    pub fn parse(args: &BTreeMap<String, String>) -> Result<Self, BootError> {
        let required = |arg: &'static str| {
            args.get(arg)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(arg, "is empty: the step needs a value"))
        };
        let name = required("name")?;
        let image = required("image")?;
        let flavor = required("flavor")?;
        let mut nics = Vec::new();
        for nic in list(args.get("networks")) {
            let (network, ip) = match nic.split_once('=') {
                Some((n, ip)) => (n.trim(), Some(ip.trim())),
                None => (nic, None),
            };
            if network.is_empty() {
                return Err(bad("networks", format!("{nic:?} names no network")));
            }
            let fixed_ip = match ip {
                None => None,
                Some(ip) => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                    bad(
                        "networks",
                        format!("{ip:?} (for network {network}) is not an IPv4 address"),
                    )
                })?),
            };
            nics.push(Nic {
                network: network.to_string(),
                fixed_ip,
            });
        }
        if nics.is_empty() {
            return Err(bad(
                "networks",
                "names no network: write NAME=FIXED_IP, comma-separated",
            ));
        }
        let mut volumes = Vec::new();
        for mapping in list(args.get("block_device")) {
            let Some((device, rest)) = mapping.split_once('=') else {
                return Err(bad(
                    "block_device",
                    format!("{mapping:?} is not DEV=VOLUME_ID[:TYPE[:SIZE[:DELETE]]]"),
                ));
            };
            let device = device.trim();
            let device = if device.starts_with("/dev/") {
                device.to_string()
            } else {
                format!("/dev/{device}")
            };
            let fields: Vec<&str> = rest.split(':').collect();
            let volume_id = fields[0].trim();
            if !is_uuid(volume_id) {
                return Err(bad(
                    "block_device",
                    format!("{volume_id:?} (for {device}) is not a volume id"),
                ));
            }
            if let Some(kind) = fields.get(1).filter(|k| !k.is_empty()) {
                if *kind != "volume" {
                    return Err(bad(
                        "block_device",
                        format!("only existing volumes can be mapped, not {kind:?}"),
                    ));
                }
            }
            let delete_on_termination = match fields.get(3).map(|d| d.trim()) {
                None | Some("") | Some("0") | Some("false") => false,
                Some("1") | Some("true") => true,
                Some(other) => {
                    return Err(bad(
                        "block_device",
                        format!("delete-on-terminate must be 0 or 1, not {other:?}"),
                    ))
                }
            };
            volumes.push(VolumeMapping {
                device,
                volume_id: volume_id.to_string(),
                delete_on_termination,
            });
        }
        let config_drive = match args.get("config_drive").map(|v| v.trim()) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(bad(
                    "config_drive",
                    format!("must be true or false, not {other:?}"),
                ))
            }
        };
        Ok(Self {
            name,
            image,
            flavor,
            nics,
            availability_zone: args
                .get("availability_zone")
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty()),
            config_drive,
            volumes,
            security_groups: list(args.get("security_groups"))
                .map(str::to_string)
                .collect(),
            user_data: args.get("user_data").filter(|u| !u.is_empty()).cloned(),
        })
    }

    /// `POST /servers`, with the image, flavor and networks resolved to ids
    /// (`network_ids` in the order of the NICs).
    pub fn body(&self, image_id: &str, flavor_id: &str, network_ids: &[String]) -> Value {
        let networks: Vec<Value> = self
            .nics
            .iter()
            .zip(network_ids)
            .map(|(nic, id)| match nic.fixed_ip {
                Some(ip) => json!({ "uuid": id, "fixed_ip": ip.to_string() }),
                None => json!({ "uuid": id }),
            })
            .collect();
        let mut server = json!({
            "name": self.name,
            "imageRef": image_id,
            "flavorRef": flavor_id,
            "networks": networks,
            "config_drive": self.config_drive,
            "min_count": 1,
            "max_count": 1,
        });
        if let Some(az) = &self.availability_zone {
            server["availability_zone"] = json!(az);
        }
        if !self.security_groups.is_empty() {
            server["security_groups"] = self
                .security_groups
                .iter()
                .map(|g| json!({ "name": g }))
                .collect();
        }
        if !self.volumes.is_empty() {
            // The image boots the server (index 0); the volumes are attached.
            let mut mappings = vec![json!({
                "boot_index": 0, "uuid": image_id, "source_type": "image",
                "destination_type": "local", "delete_on_termination": true,
            })];
            mappings.extend(self.volumes.iter().map(|v| {
                json!({
                    "boot_index": -1, "uuid": v.volume_id, "source_type": "volume",
                    "destination_type": "volume", "device_name": v.device,
                    "delete_on_termination": v.delete_on_termination,
                })
            }));
            server["block_device_mapping_v2"] = Value::Array(mappings);
        }
        if let Some(data) = &self.user_data {
            server["user_data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
        }
        json!({ "server": server })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const VOLUME: &str = "2edbac5e-55de-4d4c-a427-ab24ebe66181";

    fn seed_like() -> BTreeMap<String, String> {
        args(&[
            ("name", "cluman"),
            ("image", "cluman_restore"),
            ("flavor", "cps-cluman"),
            ("networks", "management=172.20.67.34, internal=172.16.2.5"),
            ("block_device", &format!("/dev/vdb={VOLUME}:::0")),
            ("availability_zone", "az-2:megh-os2-compute2.cisco.com"),
            ("config_drive", "true"),
            ("security_groups", "cps_secgrp"),
        ])
    }

    #[test]
    fn the_seeds_nova_boot_becomes_novas_body() {
        let spec = BootSpec::parse(&seed_like()).unwrap();
        assert_eq!(spec.nics.len(), 2);
        assert_eq!(spec.nics[0].network, "management");
        let body = spec.body("img", "fl", &["net-m".into(), "net-i".into()]);
        let s = &body["server"];
        assert_eq!(s["imageRef"], "img");
        assert_eq!(s["flavorRef"], "fl");
        assert_eq!(
            s["networks"],
            json!([{"uuid": "net-m", "fixed_ip": "172.20.67.34"}, {"uuid": "net-i", "fixed_ip": "172.16.2.5"}])
        );
        assert_eq!(s["config_drive"], true);
        assert_eq!(s["availability_zone"], "az-2:megh-os2-compute2.cisco.com");
        assert_eq!(s["security_groups"], json!([{"name": "cps_secgrp"}]));
        let bdm = s["block_device_mapping_v2"].as_array().unwrap();
        assert_eq!(bdm[0]["source_type"], "image");
        assert_eq!(bdm[1]["uuid"], VOLUME);
        assert_eq!(bdm[1]["device_name"], "/dev/vdb");
        assert_eq!(bdm[1]["delete_on_termination"], false);
        assert!(s.get("user_data").is_none());
    }

    #[test]
    fn user_data_is_sent_base64_encoded() {
        let mut a = seed_like();
        a.insert("user_data".into(), "#cloud-config\n".into());
        let body = BootSpec::parse(&a)
            .unwrap()
            .body("i", "f", &["n".into(), "m".into()]);
        assert_eq!(body["server"]["user_data"], "I2Nsb3VkLWNvbmZpZwo=");
    }

    #[test]
    fn mistakes_name_the_argument_and_the_value() {
        let with = |k: &str, v: &str| {
            let mut a = seed_like();
            a.insert(k.into(), v.into());
            BootSpec::parse(&a).unwrap_err().to_string()
        };
        assert_eq!(
            with("networks", "management=172.20.67.300"),
            "server.create: `networks` \"172.20.67.300\" (for network management) is not an IPv4 address"
        );
        assert!(with("networks", "").contains("names no network"));
        assert!(with("networks", "=1.2.3.4").contains("names no network"));
        assert!(with("block_device", "/dev/vdb").contains("DEV=VOLUME_ID"));
        assert!(with("block_device", "vdb=").contains("is not a volume id"));
        assert!(with("block_device", &format!("vdb={VOLUME}:blank")).contains("existing volumes"));
        assert!(with("config_drive", "yes").contains("true or false"));
        assert!(with("name", " ").contains("`name` is empty"));
    }

    #[test]
    fn a_short_device_name_gets_dev() {
        let mut a = seed_like();
        a.insert("block_device".into(), format!("vdb={VOLUME}:volume::1"));
        let spec = BootSpec::parse(&a).unwrap();
        assert_eq!(spec.volumes[0].device, "/dev/vdb");
        assert!(spec.volumes[0].delete_on_termination);
    }

    #[test]
    fn ids_are_recognised() {
        assert!(is_id(VOLUME));
        assert!(!is_id("management"));
    }
}
