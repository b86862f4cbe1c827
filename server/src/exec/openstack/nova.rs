//! Nova (compute v2.1): servers found by name or id, their state, and the actions
//! the procedures take on them. The microversion is pinned, so the answers have
//! one shape: 2.79 (≥ 2.45: createImage answers the image id; ≥ 2.47: the flavor is
//! embedded; ≤ 2.87: hypervisor statistics still exist).

use super::session::{body_text, OpenStackError, Session};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

/// The compute microversion every request asks for.
pub const MICROVERSION: &str = "compute 2.79";

const COMPUTE: &[&str] = &["compute"];

/// A server as the portal needs it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Server {
    pub id: String,
    pub name: String,
    /// ACTIVE, SHUTOFF, REBUILD, ERROR, …
    pub status: String,
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    pub task_state: Option<String>,
    #[serde(rename = "OS-EXT-STS:vm_state", default)]
    pub vm_state: Option<String>,
    /// Set when the server is in ERROR.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// `{"id": ...}`, or `""` for a server booted from a volume.
    #[serde(default)]
    pub image: Value,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Fault {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub message: String,
}

impl Server {
    /// The image the server was booted from, unless it boots from a volume.
    pub fn image_id(&self) -> Option<String> {
        self.image
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The state in one phrase, as an operator reads it (`ACTIVE`, `SHUTOFF
    /// (powering-on)`, `ERROR: No valid host was found`).
    pub fn describe(&self) -> String {
        match (&self.task_state, &self.fault) {
            (_, Some(f)) if self.status == "ERROR" => format!("ERROR: {}", f.message),
            (Some(t), _) => format!("{} ({t})", self.status),
            _ => self.status.clone(),
        }
    }
}

#[derive(Deserialize)]
struct OneServer {
    server: Server,
}

#[derive(Deserialize)]
struct ServerPage {
    servers: Vec<Server>,
    #[serde(default)]
    servers_links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    rel: String,
}

/// What an action on a server does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAction {
    Stop,
    Start,
    Reboot {
        hard: bool,
    },
    /// A snapshot with this name; answers the new image's id.
    CreateImage {
        name: String,
    },
    /// Rebuild from this image id.
    Rebuild {
        image_id: String,
    },
}

impl ServerAction {
    /// The body of `POST /servers/{id}/action`.
    pub fn body(&self) -> Value {
        match self {
            ServerAction::Stop => json!({ "os-stop": null }),
            ServerAction::Start => json!({ "os-start": null }),
            ServerAction::Reboot { hard } => {
                json!({ "reboot": { "type": if *hard { "HARD" } else { "SOFT" } } })
            }
            ServerAction::CreateImage { name } => {
                json!({ "createImage": { "name": name, "metadata": {} } })
            }
            ServerAction::Rebuild { image_id } => json!({ "rebuild": { "imageRef": image_id } }),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, OpenStackError> {
    serde_json::from_str(text).map_err(|e| OpenStackError::Decode {
        service: "compute".into(),
        message: e.to_string(),
    })
}

/// Every server whose name is exactly `name` (Nova filters by regular expression,
/// so the name is anchored and escaped), following `marker` pagination.
pub async fn servers_named(session: &Session, name: &str) -> Result<Vec<Server>, OpenStackError> {
    let mut all = servers_matching(session, &format!("^{}$", regex_escape(name))).await?;
    all.retain(|s| s.name == name);
    Ok(all)
}

/// Every server whose name contains `part` (all servers when it is empty).
pub async fn servers_named_like(
    session: &Session,
    part: &str,
) -> Result<Vec<Server>, OpenStackError> {
    servers_matching(session, &regex_escape(part)).await
}

async fn servers_matching(session: &Session, pattern: &str) -> Result<Vec<Server>, OpenStackError> {
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut query: Vec<(&str, String)> = vec![("limit", "100".into())];
        if !pattern.is_empty() {
            query.push(("name", pattern.to_string()));
        }
        if let Some(m) = &marker {
            query.push(("marker", m.clone()));
        }
        let response = session
            .send(COMPUTE, Method::GET, "servers/detail", |r| {
                r.header("OpenStack-API-Version", MICROVERSION)
                    .query(&query)
            })
            .await?;
        let text = body_text("compute", response).await?;
        let page: ServerPage = decode(&text)?;
        let more = page.servers_links.iter().any(|l| l.rel == "next") && !page.servers.is_empty();
        marker = page.servers.last().map(|s| s.id.clone());
        found.extend(page.servers);
        if !more {
            return Ok(found);
        }
    }
}

/// The server with id or name `server`: exactly one, or an error that says what
/// was found.
pub async fn find_server(session: &Session, server: &str) -> Result<Server, OpenStackError> {
    match show(session, server).await {
        Ok(s) => return Ok(s),
        Err(OpenStackError::Api { status: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    let mut named = servers_named(session, server).await?;
    match named.len() {
        1 => Ok(named.remove(0)),
        0 => Err(OpenStackError::Api {
            service: "compute".into(),
            status: 404,
            message: format!("there is no server with the name or id {server:?}"),
        }),
        n => Err(OpenStackError::Api {
            service: "compute".into(),
            status: 409,
            message: format!(
                "{n} servers are named {server:?} ({}): use the id of the one meant",
                named
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Server `id`.
pub async fn show(session: &Session, id: &str) -> Result<Server, OpenStackError> {
    let response = session
        .send(
            COMPUTE,
            Method::GET,
            &format!("servers/{}", path_segment(id)),
            |r| r.header("OpenStack-API-Version", MICROVERSION),
        )
        .await?;
    let text = body_text("compute", response).await?;
    Ok(decode::<OneServer>(&text)?.server)
}

/// Takes `action` on server `id`; a snapshot answers its image id.
pub async fn act(
    session: &Session,
    id: &str,
    action: &ServerAction,
) -> Result<Option<String>, OpenStackError> {
    let body = action.body();
    let response = session
        .send(
            COMPUTE,
            Method::POST,
            &format!("servers/{}/action", path_segment(id)),
            |r| r.header("OpenStack-API-Version", MICROVERSION).json(&body),
        )
        .await?;
    if let ServerAction::CreateImage { .. } = action {
        let text = response.text().await.unwrap_or_default();
        let v: Value = decode(&text)?;
        return Ok(v
            .get("image_id")
            .and_then(Value::as_str)
            .map(str::to_string));
    }
    Ok(None)
}

/// Free capacity: the hypervisors' statistics (admin; absent after 2.87) and the
/// project's absolute limits, as `(name, value)` pairs to print.
pub async fn capacity(session: &Session) -> Result<Vec<(String, i64)>, OpenStackError> {
    let mut out = Vec::new();
    let read = |v: &Value, keys: &[&str], out: &mut Vec<(String, i64)>| {
        for k in keys {
            if let Some(n) = v.get(*k).and_then(Value::as_i64) {
                out.push((k.to_string(), n));
            }
        }
    };
    match session
        .send(COMPUTE, Method::GET, "os-hypervisors/statistics", |r| {
            r.header("OpenStack-API-Version", MICROVERSION)
        })
        .await
    {
        Ok(r) => {
            let v: Value = decode(&r.text().await.unwrap_or_default())?;
            read(
                &v["hypervisor_statistics"],
                &[
                    "free_disk_gb",
                    "free_ram_mb",
                    "vcpus",
                    "vcpus_used",
                    "running_vms",
                ],
                &mut out,
            );
        }
        // Not an admin, or a newer cloud: the limits still say something.
        Err(OpenStackError::Api {
            status: 403 | 404, ..
        }) => {}
        Err(e) => return Err(e),
    }
    let r = session
        .send(COMPUTE, Method::GET, "limits", |r| {
            r.header("OpenStack-API-Version", MICROVERSION)
        })
        .await?;
    let v: Value = decode(&r.text().await.unwrap_or_default())?;
    read(
        &v["limits"]["absolute"],
        &[
            "maxTotalInstances",
            "totalInstancesUsed",
            "maxTotalCores",
            "totalCoresUsed",
            "maxTotalRAMSize",
            "totalRAMUsed",
        ],
        &mut out,
    );
    Ok(out)
}

/// Creates a server from Nova's request `body` (see [`super::boot`]); answers its id.
pub async fn create(session: &Session, body: &Value) -> Result<String, OpenStackError> {
    let response = session
        .send(COMPUTE, Method::POST, "servers", |r| {
            r.header("OpenStack-API-Version", MICROVERSION).json(body)
        })
        .await?;
    let text = body_text("compute", response).await?;
    let v: Value = decode(&text)?;
    v.pointer("/server/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| OpenStackError::Decode {
            service: "compute".into(),
            message: "the answer to a server create has no server id".into(),
        })
}

/// The id of flavor `flavor`, given by id or by name.
pub async fn flavor_id(session: &Session, flavor: &str) -> Result<String, OpenStackError> {
    #[derive(Deserialize)]
    struct Flavor {
        id: String,
        name: String,
    }
    #[derive(Deserialize)]
    struct Flavors {
        flavors: Vec<Flavor>,
    }
    let response = session
        .send(COMPUTE, Method::GET, "flavors/detail", |r| {
            r.header("OpenStack-API-Version", MICROVERSION)
        })
        .await?;
    let text = body_text("compute", response).await?;
    let all: Flavors = decode(&text)?;
    all.flavors
        .into_iter()
        .find(|f| f.id == flavor || f.name == flavor)
        .map(|f| f.id)
        .ok_or_else(|| OpenStackError::Api {
            service: "compute".into(),
            status: 404,
            message: format!("there is no flavor with the name or id {flavor:?}"),
        })
}

/// Deletes server `id`.
pub async fn delete(session: &Session, id: &str) -> Result<(), OpenStackError> {
    session
        .send(
            COMPUTE,
            Method::DELETE,
            &format!("servers/{}", path_segment(id)),
            |r| r.header("OpenStack-API-Version", MICROVERSION),
        )
        .await?;
    Ok(())
}

/// Escapes the characters a regular expression gives meaning to.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An id or name as one path segment.
fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_as_nova_answers_it() {
        let s: OneServer = serde_json::from_str(
            r#"{"server":{"id":"a1","name":"pcrfclient01","status":"ERROR","OS-EXT-STS:task_state":null,
              "OS-EXT-STS:vm_state":"error","OS-EXT-STS:power_state":0,"flavor":{"original_name":"pcrf"},
              "fault":{"code":500,"message":"No valid host was found.","created":"2026-11-27T01:00:00Z"},
              "addresses":{"internal":[{"addr":"10.10.1.11","version":4}]}}}"#,
        )
        .unwrap();
        assert_eq!(s.server.describe(), "ERROR: No valid host was found.");
        let busy = Server {
            status: "SHUTOFF".into(),
            task_state: Some("powering-on".into()),
            fault: None,
            ..s.server
        };
        assert_eq!(busy.describe(), "SHUTOFF (powering-on)");
    }

    #[test]
    fn action_bodies_are_novas() {
        assert_eq!(ServerAction::Stop.body(), json!({"os-stop": null}));
        assert_eq!(
            ServerAction::Reboot { hard: true }.body(),
            json!({"reboot": {"type": "HARD"}})
        );
        assert_eq!(
            ServerAction::CreateImage {
                name: "cluman_snapshot".into()
            }
            .body(),
            json!({"createImage": {"name": "cluman_snapshot", "metadata": {}}})
        );
        assert_eq!(
            ServerAction::Rebuild {
                image_id: "i1".into()
            }
            .body(),
            json!({"rebuild": {"imageRef": "i1"}})
        );
    }

    #[test]
    fn names_are_matched_exactly() {
        assert_eq!(regex_escape("lb01.site-a"), "lb01\\.site\\-a");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
