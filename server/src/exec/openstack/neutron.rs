//! Neutron v2.0: networks found by name, for the NICs of a new server.

use super::session::{body_text, OpenStackError, Session};
use reqwest::Method;
use serde::Deserialize;

const NETWORK: &[&str] = &["network"];

#[derive(Deserialize)]
struct Network {
    id: String,
}

#[derive(Deserialize)]
struct Networks {
    networks: Vec<Network>,
}

/// The id of the network named `name`: exactly one, or an error that says what
/// was found.
pub async fn network_id(session: &Session, name: &str) -> Result<String, OpenStackError> {
    let response = session
        .send(NETWORK, Method::GET, "v2.0/networks", |r| {
            r.query(&[("name", name)])
        })
        .await?;
    let text = body_text("network", response).await?;
    let mut found: Networks = serde_json::from_str(&text).map_err(|e| OpenStackError::Decode {
        service: "network".into(),
        message: e.to_string(),
    })?;
    match found.networks.len() {
        1 => Ok(found.networks.remove(0).id),
        0 => Err(OpenStackError::Api {
            service: "network".into(),
            status: 404,
            message: format!("there is no network named {name:?}"),
        }),
        n => Err(OpenStackError::Api {
            service: "network".into(),
            status: 409,
            message: format!("{n} networks are named {name:?}: use the id of the one meant"),
        }),
    }
}
