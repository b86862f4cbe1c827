//! `recovery-portal bench image-transfer`: downloads a generated image from the
//! lab's Glance through the portal's OpenStack client and, in the same run, with
//! `curl` from the same URL and token, and prints both rates, their ratio and the
//! process's peak resident memory. A benchmark, not a test: it prints figures.

use super::CommandError;
use crate::exec::openstack::{cloud, glance, session::Session};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The process's peak resident set (VmHWM), in bytes, where Linux tells it.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mb_per_s(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64().max(1e-9)
}

/// Runs the benchmark with an image of `size_mb` megabytes (10^6 bytes).
pub async fn image_transfer(size_mb: u64) -> Result<ExitCode, CommandError> {
    let service = |e: String| CommandError::Service(e);
    let dir = tempfile::tempdir().map_err(|e| service(format!("a temporary directory: {e}")))?;
    let lab = lab::Lab::start(&dir.path().join("lab"))
        .await
        .map_err(|e| service(format!("the lab did not start: {e}")))?;
    let size = size_mb * 1_000_000;
    lab.add_generated_image("bench", size).await;
    let rss_before = peak_rss();

    let cloud = cloud::from_clouds_yaml(
        "clouds.yaml",
        &lab.clouds_yaml(),
        None,
        "lab",
        Path::new("."),
    )
    .map_err(|e| service(e.to_string()))?;
    let session =
        Session::new(cloud, Duration::from_secs(60)).map_err(|e| service(e.to_string()))?;
    let image = glance::find(&session, "bench")
        .await
        .map_err(|e| service(e.to_string()))?;

    // The portal: streamed to a file, hashed (MD5, SHA-512, SHA-256) and verified.
    let portal_file = dir.path().join("portal.raw");
    let started = Instant::now();
    let got = glance::download(&session, &image, &portal_file, |_, _| {})
        .await
        .map_err(|e| service(e.to_string()))?;
    let portal_time = started.elapsed();
    let rss_after = peak_rss();

    // curl, from the same URL with a token of its own.
    let token = reqwest::Client::new()
        .post(format!("{}/auth/tokens", lab.openstack_auth_url()))
        .json(&serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": lab.openstack_credentials().username, "domain": {"name": "Default"},
            "password": lab.openstack_credentials().password}}},
            "scope": {"project": {"name": lab.openstack_credentials().project_name, "domain": {"name": "Default"}}}}}))
        .send()
        .await
        .map_err(|e| service(format!("a token for curl: {e}")))?
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| service("the lab gave curl no token".into()))?;
    let url = format!("{}/image/v2/images/{}/file", lab.openstack_url(), image.id);
    let curl_file = dir.path().join("curl.raw");
    let started = Instant::now();
    let status = tokio::process::Command::new("curl")
        .args(["-sS", "--fail", "-o"])
        .arg(&curl_file)
        .args(["-H", &format!("X-Auth-Token: {token}"), &url])
        .status()
        .await
        .map_err(|e| service(format!("curl could not run: {e}")))?;
    let curl_time = started.elapsed();
    if !status.success() {
        return Err(service(format!("curl failed: {status}")));
    }
    let curl_bytes = std::fs::metadata(&curl_file).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&curl_file);

    // curl again, its output hashed as the portal hashes it (coreutils, in
    // parallel through tee): what a hand-made verified download costs.
    // Named pipes, so that the timing ends when every hasher has finished.
    let script = format!(
        "set -euo pipefail; cd '{d}'; mkfifo f-md5 f-sha512; \
         md5sum <f-md5 >md5 & a=$!; sha512sum <f-sha512 >sha512 & b=$!; \
         curl -sS --fail -H 'X-Auth-Token: {token}' '{url}' | tee f-md5 f-sha512 curl2.raw | sha256sum >sha256; \
         wait $a $b",
        d = dir.path().display()
    );
    let started = Instant::now();
    let hashed = tokio::process::Command::new("bash")
        .args(["-c", &script])
        .status()
        .await
        .map_err(|e| service(format!("bash could not run: {e}")))?;
    let curl_hashed_time = started.elapsed();
    if !hashed.success() {
        return Err(service(format!("curl with hashing failed: {hashed}")));
    }
    let md5_line = std::fs::read_to_string(dir.path().join("md5")).unwrap_or_default();
    if image
        .checksum
        .as_deref()
        .is_some_and(|c| !md5_line.starts_with(c))
    {
        return Err(service(
            "curl's MD5 differs from the image's checksum".into(),
        ));
    }
    lab.shutdown().await;
    if curl_bytes != got.bytes {
        return Err(service(format!(
            "curl got {curl_bytes} bytes, the portal {}",
            got.bytes
        )));
    }

    let portal = mb_per_s(got.bytes, portal_time);
    let curl = mb_per_s(curl_bytes, curl_time);
    let curl_hashed = mb_per_s(curl_bytes, curl_hashed_time);
    let mib = |b: Option<u64>| {
        b.map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
            .unwrap_or_else(|| "unknown".into())
    };
    println!(
        "image-transfer benchmark: {} MB generated image from the lab's Glance (loopback HTTP)",
        size_mb
    );
    println!(
        "  portal (stream to file, MD5+SHA-512+SHA-256, verified): {:>8.1} MB/s  ({:.2} s)",
        portal,
        portal_time.as_secs_f64()
    );
    println!(
        "  curl (stream to file):                                 {:>8.1} MB/s  ({:.2} s)",
        curl,
        curl_time.as_secs_f64()
    );
    println!(
        "  curl | tee md5sum sha512sum sha256sum (stream to file):  {:>8.1} MB/s  ({:.2} s)",
        curl_hashed,
        curl_hashed_time.as_secs_f64()
    );
    println!("  ratio portal/curl: {:.2}", portal / curl.max(1e-9));
    println!(
        "  ratio portal/(curl with the same hashes): {:.2}",
        portal / curl_hashed.max(1e-9)
    );
    println!(
        "  cores: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "  peak RSS of this process (portal client and the lab serving it): {} before the download, {} after",
        mib(rss_before),
        mib(rss_after)
    );
    Ok(ExitCode::SUCCESS)
}
