//! Heat (orchestration v1): the stacks a CPS deployment is made of, and which
//! servers their resources are. The catalog URL already holds the project id.

use super::session::{OpenStackError, Session};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

const HEAT: &[&str] = &["orchestration"];

/// A stack as listed.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Stack {
    pub id: String,
    pub stack_name: String,
    pub stack_status: String,
    #[serde(default)]
    pub stack_status_reason: Option<String>,
}

/// A resource of a stack.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Resource {
    pub resource_name: String,
    #[serde(default)]
    pub physical_resource_id: String,
    pub resource_type: String,
    pub resource_status: String,
}

async fn json(r: reqwest::Response) -> Result<Value, OpenStackError> {
    let text = r.text().await.map_err(|e| OpenStackError::Decode {
        service: "orchestration".into(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| OpenStackError::Decode {
        service: "orchestration".into(),
        message: e.to_string(),
    })
}

fn field<T: serde::de::DeserializeOwned>(v: Value, key: &str) -> Result<T, OpenStackError> {
    serde_json::from_value(v.get(key).cloned().unwrap_or(Value::Null)).map_err(|e| {
        OpenStackError::Decode {
            service: "orchestration".into(),
            message: format!("{key}: {e}"),
        }
    })
}

/// Every stack.
pub async fn list(session: &Session) -> Result<Vec<Stack>, OpenStackError> {
    let r = session.send(HEAT, Method::GET, "stacks", |r| r).await?;
    field(json(r).await?, "stacks")
}

/// Stack `name` (Heat redirects a name to `name/id`; the client follows it).
pub async fn show(session: &Session, name: &str) -> Result<Stack, OpenStackError> {
    let r = session
        .send(HEAT, Method::GET, &format!("stacks/{name}"), |r| r)
        .await?;
    field(json(r).await?, "stack")
}

/// The resources of stack `name`.
pub async fn resources(session: &Session, name: &str) -> Result<Vec<Resource>, OpenStackError> {
    let stack = show(session, name).await?;
    let r = session
        .send(
            HEAT,
            Method::GET,
            &format!("stacks/{}/{}/resources", stack.stack_name, stack.id),
            |r| r,
        )
        .await?;
    field(json(r).await?, "resources")
}
