//! The runbooks' OpenStack actions, carried out with a [`Session`]: each writes
//! what it does and sees to the step's output, one line at a time, as the
//! openstack CLI would, and fails with the API's own message and what to do next.

use super::boot;
use super::glance;
use super::heat;
use super::neutron;
use super::nova::{self, ServerAction};
use super::session::{OpenStackError, Session};
use app::model::progress::{Progress, ProgressMeter, ProgressUnit};
use app::model::run_view::TransferRecord;
use runbook::model::OpenStackAction;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a status is polled while waiting.
const POLL: Duration = Duration::from_secs(2);

/// How often a transfer's progress is also written to the output (kept with the
/// run), besides the live bar.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);

/// Where an action reports: lines for the step's output, readings for its
/// progress bar, and whether the operator stopped it.
pub struct Report<'a> {
    pub say: &'a (dyn Fn(String) + Send + Sync),
    pub progress: &'a (dyn Fn(Progress) + Send + Sync),
    pub cancelled: &'a (dyn Fn() -> bool + Send + Sync),
}

/// What an action produced besides its output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Done {
    /// For downloads and uploads: what was stored or sent.
    pub transfer: Option<TransferRecord>,
}

/// Why an action did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    OpenStack(#[from] OpenStackError),
    #[error("{0}")]
    Failed(String),
    #[error("stopped by the operator")]
    Cancelled,
    #[error("{what} did not happen within {seconds} s (last seen: {last})")]
    TimedOut {
        what: String,
        seconds: u64,
        last: String,
    },
}

/// The next step for an operator after `e`, when there is a typical one.
pub fn advice(e: &OpenStackError) -> Option<&'static str> {
    match e {
        OpenStackError::Api { status: 404, .. } => {
            Some("check the name or id (openstack server list / image list)")
        }
        OpenStackError::Api { status: 409, .. } => {
            Some("the server is busy or already in that state: check its status and task state, then run the step again")
        }
        OpenStackError::Api { status: 413, .. } => {
            Some("the project is over quota: free capacity (old snapshots, unused servers) or ask for a higher quota")
        }
        OpenStackError::Unauthorized { .. } => {
            Some("check the cloud's credentials in clouds.yaml (or the OS_* variables)")
        }
        OpenStackError::Unreachable { .. } => {
            Some("check that the portal can reach the cloud's API (address, firewall, CA bundle)")
        }
        _ => None,
    }
}

fn arg<'a>(args: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, ActionError> {
    args.get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ActionError::Failed(format!("the step has no value for `{name}`")))
}

/// `relative` inside the backup store at `store`; refused if it would leave it.
fn in_store(store: &Path, relative: &str) -> Result<std::path::PathBuf, ActionError> {
    if relative.starts_with('/') || relative.split('/').any(|s| s == "..") {
        return Err(ActionError::Failed(format!(
            "store path {relative:?} must stay inside the backup store"
        )));
    }
    Ok(store.join(relative))
}

fn timeout(args: &BTreeMap<String, String>, default: u64) -> Duration {
    Duration::from_secs(
        args.get("timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// Carries out `action` with `args`, reporting to `report`; files of the backup
/// store are under `store`.
pub async fn run(
    session: &Session,
    action: OpenStackAction,
    args: &BTreeMap<String, String>,
    store: &Path,
    report: &Report<'_>,
) -> Result<Done, ActionError> {
    use OpenStackAction as A;
    let (say, cancelled) = (report.say, report.cancelled);
    match action {
        A::ServerShow => {
            let s = nova::find_server(session, arg(args, "server")?).await?;
            say(format!("{} ({}): {}", s.name, s.id, s.describe()));
            Ok(Done::default())
        }
        A::ServerList => {
            let name = args.get("name").map(String::as_str).unwrap_or("");
            let servers = nova::servers_named_like(session, name).await?;
            for s in &servers {
                say(format!("{:<24} {:<36} {}", s.name, s.id, s.describe()));
            }
            say(format!("{} server(s)", servers.len()));
            Ok(Done::default())
        }
        A::ServerStop | A::ServerStart | A::ServerReboot => {
            let s = nova::find_server(session, arg(args, "server")?).await?;
            let (act, target) = match action {
                A::ServerStop => (ServerAction::Stop, "SHUTOFF"),
                A::ServerStart => (ServerAction::Start, "ACTIVE"),
                _ => (
                    ServerAction::Reboot {
                        hard: args.get("hard").is_some_and(|h| h == "true"),
                    },
                    "ACTIVE",
                ),
            };
            say(format!("{} ({}) is {}", s.name, s.id, s.describe()));
            nova::act(session, &s.id, &act).await?;
            say(format!("{} requested; waiting for {target}", action.name()));
            wait_server(session, &s.id, target, timeout(args, 600), say, cancelled).await?;
            Ok(Done::default())
        }
        A::ServerWaitStatus => {
            let s = nova::find_server(session, arg(args, "server")?).await?;
            wait_server(
                session,
                &s.id,
                arg(args, "status")?,
                timeout(args, 1800),
                say,
                cancelled,
            )
            .await?;
            Ok(Done::default())
        }
        A::ServerSnapshot => {
            let s = nova::find_server(session, arg(args, "server")?).await?;
            let name = arg(args, "name")?;
            let image_id = nova::act(
                session,
                &s.id,
                &ServerAction::CreateImage {
                    name: name.to_string(),
                },
            )
            .await?
            .ok_or_else(|| {
                ActionError::Failed("Nova did not say which image the snapshot is".into())
            })?;
            say(format!("snapshot {name} of {} is image {image_id}", s.name));
            wait_snapshot(session, &s.id, &image_id, name, timeout(args, 3600), report).await?;
            Ok(Done::default())
        }
        A::ServerCreate => {
            let spec =
                boot::BootSpec::parse(args).map_err(|e| ActionError::Failed(e.to_string()))?;
            if !nova::servers_named(session, &spec.name).await?.is_empty() {
                return Err(ActionError::Failed(format!(
                    "a server named {} exists already: rebuild it instead, or delete it first",
                    spec.name
                )));
            }
            let image = glance::find(session, &spec.image).await?;
            if image.status != "active" {
                return Err(ActionError::Failed(format!(
                    "image {} is {}, not active: wait until it is",
                    spec.image, image.status
                )));
            }
            let flavor_id = nova::flavor_id(session, &spec.flavor).await?;
            let mut network_ids = Vec::new();
            for nic in &spec.nics {
                network_ids.push(if boot::is_id(&nic.network) {
                    nic.network.clone()
                } else {
                    neutron::network_id(session, &nic.network).await?
                });
            }
            let id = nova::create(session, &spec.body(&image.id, &flavor_id, &network_ids)).await?;
            say(format!(
                "creating {} ({id}) from image {} with flavor {}, NICs {}{}",
                spec.name,
                image.id,
                spec.flavor,
                spec.nics
                    .iter()
                    .map(|n| match n.fixed_ip {
                        Some(ip) => format!("{}={ip}", n.network),
                        None => n.network.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                spec.volumes
                    .iter()
                    .map(|v| format!(", volume {} at {}", v.volume_id, v.device))
                    .collect::<String>()
            ));
            wait_server(session, &id, "ACTIVE", timeout(args, 1800), say, cancelled).await?;
            Ok(Done::default())
        }
        A::ServerRebuild => {
            let s = nova::find_server(session, arg(args, "server")?).await?;
            let image_id = match args.get("image").filter(|i| !i.is_empty()) {
                Some(image) => glance::find(session, image).await?.id,
                None => s.image_id().ok_or_else(|| {
                    ActionError::Failed(format!(
                        "{} boots from a volume: name the image to rebuild it from",
                        s.name
                    ))
                })?,
            };
            say(format!(
                "rebuilding {} ({}) from image {image_id}",
                s.name, s.id
            ));
            nova::act(session, &s.id, &ServerAction::Rebuild { image_id }).await?;
            wait_server(
                session,
                &s.id,
                "ACTIVE",
                timeout(args, 1800),
                say,
                cancelled,
            )
            .await?;
            Ok(Done::default())
        }
        A::ImageShow => {
            let i = glance::find(session, arg(args, "image")?).await?;
            say(format!(
                "{} ({}): {}, {} bytes, md5 {}",
                i.name.as_deref().unwrap_or("-"),
                i.id,
                i.status,
                i.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                i.checksum.as_deref().unwrap_or("-")
            ));
            Ok(Done::default())
        }
        A::ImageWaitStatus => {
            let i = glance::find(session, arg(args, "image")?).await?;
            wait_image(
                session,
                &i.id,
                arg(args, "status")?,
                timeout(args, 3600),
                say,
                cancelled,
            )
            .await?;
            Ok(Done::default())
        }
        A::ImageDownload => {
            let i = glance::find(session, arg(args, "image")?).await?;
            let relative = arg(args, "store")?;
            let dest = in_store(store, relative)?;
            say(format!(
                "downloading image {} ({}, {} bytes) to backup store:{relative}",
                i.name.as_deref().unwrap_or("-"),
                i.id,
                i.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
            ));
            let started = Instant::now();
            let mut meter = ProgressMeter::new(
                format!("download of {}", i.name.as_deref().unwrap_or(&i.id)),
                ProgressUnit::Bytes,
                i.size,
            );
            let mut lines = LineEvery::new(PROGRESS_LINE_EVERY);
            let got = glance::download(session, &i, &dest, |bytes, _| {
                if let Some(p) = meter.update(bytes, started.elapsed()) {
                    if lines.due(started.elapsed()) {
                        say(p.text());
                    }
                    (report.progress)(p);
                }
            })
            .await?;
            (report.progress)(meter.finish(got.bytes, started.elapsed()));
            say(format!(
                "downloaded {} bytes in {:.1} s{}; MD5 and SHA-512 match the image; SHA-256 {}",
                got.bytes,
                started.elapsed().as_secs_f64(),
                if got.resumed > 0 {
                    format!(" (resumed {} times)", got.resumed)
                } else {
                    String::new()
                },
                got.sha256
            ));
            Ok(Done {
                transfer: Some(TransferRecord {
                    bytes: got.bytes,
                    sha256: got.sha256,
                }),
            })
        }
        A::ImageList => {
            let images =
                glance::list(session, args.get("name").map(String::as_str).unwrap_or("")).await?;
            for i in &images {
                say(format!(
                    "{:<40} {:<36} {}",
                    i.name.as_deref().unwrap_or("-"),
                    i.id,
                    i.status
                ));
            }
            say(format!("{} image(s)", images.len()));
            Ok(Done::default())
        }
        A::ImageDelete => {
            let i = glance::find(session, arg(args, "image")?).await?;
            glance::delete(session, &i.id).await?;
            say(format!(
                "deleted image {} ({})",
                i.name.as_deref().unwrap_or("-"),
                i.id
            ));
            Ok(Done::default())
        }
        A::ServerDelete => {
            let s = nova::find_server(session, arg(args, "server")?).await?;
            nova::delete(session, &s.id).await?;
            say(format!("deleting {} ({})", s.name, s.id));
            let started = Instant::now();
            loop {
                match nova::show(session, &s.id).await {
                    Err(OpenStackError::Api { status: 404, .. }) => break,
                    Ok(now) => say(format!("{}: {}", now.name, now.describe())),
                    Err(e) => return Err(e.into()),
                }
                pause(
                    started,
                    timeout(args, 600),
                    &format!("{} to be deleted", s.name),
                    "",
                    cancelled,
                )
                .await?;
            }
            say(format!("{} is deleted", s.name));
            Ok(Done::default())
        }
        A::ImageUpload => {
            let relative = arg(args, "store")?;
            let path = in_store(store, relative)?;
            let name = arg(args, "name")?;
            say(format!("uploading backup store:{relative} as image {name}"));
            let started = Instant::now();
            let size = tokio::fs::metadata(&path).await.map(|m| m.len()).ok();
            let mut meter =
                ProgressMeter::new(format!("upload of {name}"), ProgressUnit::Bytes, size);
            let mut lines = LineEvery::new(PROGRESS_LINE_EVERY);
            let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let upload = glance::upload(
                session,
                name,
                args.get("disk_format")
                    .map(String::as_str)
                    .unwrap_or("qcow2"),
                args.get("container_format")
                    .map(String::as_str)
                    .unwrap_or("bare"),
                &path,
                sent.clone(),
            );
            tokio::pin!(upload);
            // The body streams on reqwest's side: its counter is read on a tick.
            let (i, md5, sha256, bytes) = loop {
                tokio::select! {
                    done = &mut upload => break done?,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {
                        let now = sent.load(std::sync::atomic::Ordering::Relaxed);
                        if let Some(p) = meter.update(now, started.elapsed()) {
                            if lines.due(started.elapsed()) {
                                say(p.text());
                            }
                            (report.progress)(p);
                        }
                    }
                }
            };
            (report.progress)(meter.finish(bytes, started.elapsed()));
            say(format!(
                "sent {bytes} bytes in {:.1} s; image {} is {}",
                started.elapsed().as_secs_f64(),
                i.id,
                i.status
            ));
            wait_image(
                session,
                &i.id,
                "active",
                timeout(args, 3600),
                say,
                cancelled,
            )
            .await?;
            let stored = glance::show(session, &i.id).await?;
            if stored
                .checksum
                .as_deref()
                .is_some_and(|c| !c.eq_ignore_ascii_case(&md5))
            {
                return Err(ActionError::Failed(format!(
                    "Glance's checksum of image {} differs from the file's MD5 {md5}: delete the image and upload it again",
                    i.id
                )));
            }
            say(format!("Glance's checksum matches the file's MD5 {md5}"));
            Ok(Done {
                transfer: Some(TransferRecord { bytes, sha256 }),
            })
        }
        A::CapacityCheck => {
            let figures = nova::capacity(session).await?;
            for (k, v) in &figures {
                say(format!("{k:<20} {v}"));
            }
            let get = |k: &str| figures.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
            if get("free_disk_gb").is_some_and(|f| f <= 0) {
                return Err(ActionError::Failed(
                    "the hypervisors have no free disk: free space before taking a snapshot".into(),
                ));
            }
            if let (Some(max), Some(used)) = (get("maxTotalInstances"), get("totalInstancesUsed")) {
                if max >= 0 && used >= max {
                    return Err(ActionError::Failed(format!(
                        "the project uses {used} of its {max} instances: no server can be added"
                    )));
                }
            }
            Ok(Done::default())
        }
        A::StackList => {
            for s in heat::list(session).await? {
                say(format!(
                    "{:<24} {:<36} {}",
                    s.stack_name, s.id, s.stack_status
                ));
            }
            Ok(Done::default())
        }
        A::StackShow => {
            let s = heat::show(session, arg(args, "stack")?).await?;
            say(format!(
                "{} ({}): {}{}",
                s.stack_name,
                s.id,
                s.stack_status,
                s.stack_status_reason
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            ));
            Ok(Done::default())
        }
        A::StackResources => {
            for r in heat::resources(session, arg(args, "stack")?).await? {
                say(format!(
                    "{:<24} {:<28} {:<36} {}",
                    r.resource_name, r.resource_type, r.physical_resource_id, r.resource_status
                ));
            }
            Ok(Done::default())
        }
    }
}

/// Lets a line through at most every `every`; the first one always.
struct LineEvery {
    every: Duration,
    last: Option<Duration>,
}

impl LineEvery {
    fn new(every: Duration) -> Self {
        Self { every, last: None }
    }

    fn due(&mut self, now: Duration) -> bool {
        if self
            .last
            .is_some_and(|l| now.saturating_sub(l) < self.every)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// The phases of a snapshot, in Nova's task states, then the image's status.
const SNAPSHOT_PHASES: [&str; 4] = [
    "image_snapshot",
    "image_pending_upload",
    "image_uploading",
    "image active",
];

/// Waits for snapshot `image_id` of server `server_id` to become active,
/// reporting Nova's phases as progress.
async fn wait_snapshot(
    session: &Session,
    server_id: &str,
    image_id: &str,
    name: &str,
    limit: Duration,
    report: &Report<'_>,
) -> Result<(), ActionError> {
    let started = Instant::now();
    let total = SNAPSHOT_PHASES.len() as u64;
    let mut meter = ProgressMeter::new(
        format!("snapshot {name}"),
        ProgressUnit::Phases,
        Some(total),
    );
    let mut reached = 0usize;
    let mut last = String::new();
    loop {
        let server = nova::show(session, server_id).await?;
        let image = glance::show(session, image_id).await?;
        if let Some(i) = server
            .task_state
            .as_deref()
            .and_then(|t| SNAPSHOT_PHASES.iter().position(|p| *p == t))
        {
            reached = reached.max(i + 1);
        }
        let now = format!(
            "{}: {}; image {name}: {}",
            server.name,
            server.describe(),
            image.status
        );
        if now != last {
            (report.say)(now.clone());
            last = now;
        }
        if image.status == "active" {
            (report.progress)(meter.finish(total, started.elapsed()));
            return Ok(());
        }
        if matches!(
            image.status.as_str(),
            "killed" | "deleted" | "pending_delete"
        ) {
            return Err(ActionError::Failed(format!(
                "snapshot image {image_id} ended {}: delete it, check the hypervisor's free space, and take the snapshot again",
                image.status
            )));
        }
        if reached > 0 {
            let phase = SNAPSHOT_PHASES[reached - 1];
            (report.progress)(meter.phase(phase, reached as u64, started.elapsed()));
        }
        pause(
            started,
            limit,
            &format!("snapshot {name} to become active"),
            &last,
            report.cancelled,
        )
        .await?;
    }
}

async fn wait_server(
    session: &Session,
    id: &str,
    status: &str,
    limit: Duration,
    say: &(dyn Fn(String) + Send + Sync),
    cancelled: &(dyn Fn() -> bool + Send + Sync),
) -> Result<(), ActionError> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let s = nova::show(session, id).await?;
        let now = s.describe();
        if now != last {
            say(format!("{}: {now}", s.name));
            last = now;
        }
        if s.status == status && s.task_state.is_none() {
            return Ok(());
        }
        if s.status == "ERROR" {
            return Err(ActionError::Failed(format!(
                "{} went to ERROR{}: look at the server's fault, fix its cause, then rebuild or recreate it",
                s.name,
                s.fault.map(|f| format!(" ({})", f.message)).unwrap_or_default()
            )));
        }
        pause(
            started,
            limit,
            &format!("{} to become {status}", s.name),
            &last,
            cancelled,
        )
        .await?;
    }
}

async fn wait_image(
    session: &Session,
    id: &str,
    status: &str,
    limit: Duration,
    say: &(dyn Fn(String) + Send + Sync),
    cancelled: &(dyn Fn() -> bool + Send + Sync),
) -> Result<(), ActionError> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let i = glance::show(session, id).await?;
        if i.status != last {
            say(format!(
                "image {}: {}",
                i.name.as_deref().unwrap_or(id),
                i.status
            ));
            last = i.status.clone();
        }
        if i.status == status {
            return Ok(());
        }
        if matches!(i.status.as_str(), "killed" | "deleted" | "pending_delete") {
            return Err(ActionError::Failed(format!(
                "image {id} ended {}: the snapshot or upload failed; delete it and take it again",
                i.status
            )));
        }
        pause(
            started,
            limit,
            &format!("image {id} to become {status}"),
            &last,
            cancelled,
        )
        .await?;
    }
}

async fn pause(
    started: Instant,
    limit: Duration,
    what: &str,
    last: &str,
    cancelled: &(dyn Fn() -> bool + Send + Sync),
) -> Result<(), ActionError> {
    if cancelled() {
        return Err(ActionError::Cancelled);
    }
    if started.elapsed() + POLL > limit {
        return Err(ActionError::TimedOut {
            what: what.to_string(),
            seconds: limit.as_secs(),
            last: last.to_string(),
        });
    }
    tokio::time::sleep(POLL).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_thinned() {
        let mut l = LineEvery::new(Duration::from_secs(5));
        assert!(l.due(Duration::from_secs(0)));
        assert!(!l.due(Duration::from_secs(4)));
        assert!(l.due(Duration::from_secs(5)));
    }

    #[test]
    fn typical_errors_come_with_what_to_do() {
        let over = OpenStackError::Api {
            service: "image".into(),
            status: 413,
            message: "quota".into(),
        };
        assert!(advice(&over).unwrap().contains("over quota"));
    }
}
