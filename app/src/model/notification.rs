//! Approval notifications as the admin sees them: each site's channels (webhooks
//! and e-mail recipients) and the deliveries of the outbox with their state.

use serde::{Deserialize, Serialize};

/// How a channel notifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A signed JSON POST to a URL.
    Webhook,
    /// An e-mail through the portal's SMTP relay.
    Email,
}

impl ChannelKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Email => "email",
        }
    }

    /// The stored name read back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" => Some(ChannelKind::Webhook),
            "email" => Some(ChannelKind::Email),
            _ => None,
        }
    }
}

/// A channel of a site, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    pub id: i64,
    pub site: String,
    pub kind: ChannelKind,
    /// The webhook's URL or the recipient's address.
    pub target: String,
    /// The last characters of a webhook's secret, so an admin can tell which
    /// one is set without the portal ever showing it.
    pub secret_hint: Option<String>,
    pub added_by: String,
    /// RFC 3339.
    pub added_at: String,
}

/// Where a delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    Delivered,
    /// Every attempt failed.
    Failed,
    /// Its channel was removed before it was delivered.
    Cancelled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            "cancelled" => Some(DeliveryState::Cancelled),
            _ => None,
        }
    }
}

/// One message to one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    /// The id receivers dedupe by.
    pub event_id: String,
    pub approval_id: i64,
    pub run_id: i64,
    pub site: String,
    pub kind: ChannelKind,
    pub target: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// RFC 3339; pending deliveries only.
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// When it was delivered, failed for good or cancelled.
    pub finished_at: Option<String>,
    pub created_at: String,
}

/// The notifications section of the Sites page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationsOverview {
    /// The sites channels can be added to.
    pub sites: Vec<String>,
    /// Every active channel, by site then id.
    pub channels: Vec<ChannelView>,
    /// The latest deliveries, newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Deliveries that failed for good, ever.
    pub failed: i64,
    /// Deliveries still waiting for an attempt.
    pub pending: i64,
    /// The SMTP relay e-mails go through (without any password), if configured.
    pub smtp_relay: Option<String>,
    /// How many attempts a delivery gets.
    pub max_attempts: u32,
}

/// How many deliveries the overview lists.
pub const DELIVERIES_SHOWN: i64 = 50;
