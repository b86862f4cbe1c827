//! Glance v2: images found by name or id, and image data streamed to the backup
//! store with flat memory. A download writes beside its destination
//! (`<dest>.portal-part`), hashes what it writes (MD5 for Glance's `checksum`,
//! SHA-512 for `os_hash_value`, SHA-256 for the run's record), resumes with
//! `Range` when the connection drops, and is renamed into place only when size
//! and both hashes match the image's.

use super::digest::{FileAppender, ParallelDigests};
use super::session::{OpenStackError, Session};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

const IMAGE: &[&str] = &["image"];

/// How many times a dropped download is resumed before giving up.
const RESUMES: u32 = 5;

/// An image as the portal needs it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// queued, saving, active, killed, deleted, …
    pub status: String,
    #[serde(default)]
    pub size: Option<u64>,
    /// MD5 of the data.
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    #[serde(default)]
    pub os_hash_value: Option<String>,
}

#[derive(Deserialize)]
struct ImagePage {
    images: Vec<Image>,
    #[serde(default)]
    next: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, OpenStackError> {
    serde_json::from_str(text).map_err(|e| OpenStackError::Decode {
        service: "image".into(),
        message: e.to_string(),
    })
}

async fn text(r: reqwest::Response) -> Result<String, OpenStackError> {
    super::session::body_text("image", r).await
}

/// Image `id`.
pub async fn show(session: &Session, id: &str) -> Result<Image, OpenStackError> {
    let r = session
        .send(IMAGE, Method::GET, &format!("v2/images/{id}"), |r| r)
        .await?;
    decode(&text(r).await?)
}

/// The image with id or name `image`: exactly one, or an error that says what was
/// found.
pub async fn find(session: &Session, image: &str) -> Result<Image, OpenStackError> {
    match show(session, image).await {
        Ok(i) => return Ok(i),
        Err(OpenStackError::Api {
            status: 404 | 400, ..
        }) => {}
        Err(e) => return Err(e),
    }
    let mut named = Vec::new();
    let mut path = "v2/images".to_string();
    let mut query = vec![("name", image.to_string()), ("limit", "100".to_string())];
    loop {
        let q = query.clone();
        let r = session
            .send(IMAGE, Method::GET, &path, |r| r.query(&q))
            .await?;
        let page: ImagePage = decode(&text(r).await?)?;
        named.extend(page.images);
        // `next` is a path with its own query (`/v2/images?marker=…`).
        match page.next {
            Some(next) => {
                path = next.trim_start_matches('/').to_string();
                query.clear();
            }
            None => break,
        }
    }
    match named.len() {
        1 => Ok(named.remove(0)),
        0 => Err(OpenStackError::Api {
            service: "image".into(),
            status: 404,
            message: format!("there is no image with the name or id {image:?}"),
        }),
        n => Err(OpenStackError::Api {
            service: "image".into(),
            status: 409,
            message: format!(
                "{n} images are named {image:?} ({}): use the id of the one meant",
                named
                    .iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// A finished download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// How many times the download was resumed after the connection dropped.
    pub resumed: u32,
}

/// Whether the downloaded data is the image's: size, MD5 and (when Glance gives
/// one) the SHA-512 `os_hash_value`. Says what differs.
pub fn verify(image: &Image, bytes: u64, md5_hex: &str, sha512_hex: &str) -> Result<(), String> {
    if let Some(size) = image.size {
        if size != bytes {
            return Err(format!("{bytes} bytes arrived, the image has {size}"));
        }
    }
    match &image.checksum {
        Some(c) if !c.eq_ignore_ascii_case(md5_hex) => {
            return Err(format!(
                "MD5 {md5_hex} differs from the image's checksum {c}"
            ))
        }
        None => return Err("the image has no checksum to compare with".into()),
        _ => {}
    }
    if image.os_hash_algo.as_deref() == Some("sha512") {
        if let Some(v) = &image.os_hash_value {
            if !v.eq_ignore_ascii_case(sha512_hex) {
                return Err(format!(
                    "SHA-512 differs from the image's os_hash_value {v}"
                ));
            }
        }
    }
    Ok(())
}

/// The temporary file a download to `dest` writes.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".portal-part");
    PathBuf::from(name)
}

/// Downloads image `image` (which must be active) to `dest`, reporting
/// `(bytes so far, total)` to `progress` as data arrives. A part file left by an
/// earlier attempt is resumed.
pub async fn download(
    session: &Session,
    image: &Image,
    dest: &Path,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Downloaded, OpenStackError> {
    let failed = |message: String| OpenStackError::Api {
        service: "image".into(),
        status: 0,
        message,
    };
    if image.status != "active" {
        return Err(failed(format!(
            "image {} is {}, not active: wait until it is",
            image.id, image.status
        )));
    }
    let part = part_path(dest);
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    }
    // What an earlier attempt left is hashed again, then continued.
    let mut hashes = ParallelDigests::start();
    if let Ok(mut f) = tokio::fs::File::open(&part).await {
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let n = f
                .read(&mut buf)
                .await
                .map_err(|e| failed(format!("{}: {e}", part.display())))?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            hashes.update(Bytes::from(buf)).await;
        }
    }
    let open = |part: &Path| {
        FileAppender::open(part).map_err(|e| failed(format!("{}: {e}", part.display())))
    };
    let mut file = open(&part)?;
    let mut resumed = 0;
    let path = format!("v2/images/{}/file", image.id);
    loop {
        let from = hashes.bytes();
        let complete = image.size.is_some_and(|s| s == from);
        if !complete {
            let response = session
                .send(IMAGE, Method::GET, &path, |r| {
                    if from > 0 {
                        r.header("Range", format!("bytes={from}-"))
                    } else {
                        r
                    }
                })
                .await?;
            if response.status() == StatusCode::OK && from > 0 {
                // The server sends everything again: start over.
                let _ = file.finish().await;
                tokio::fs::File::create(&part)
                    .await
                    .map_err(|e| failed(format!("{}: {e}", part.display())))?;
                file = open(&part)?;
                let _ = hashes.finish().await;
                hashes = ParallelDigests::start();
            }
            let mut stream = response.bytes_stream();
            let mut dropped = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(data) => {
                        if !file.write(data.clone()).await {
                            break;
                        }
                        hashes.update(data).await;
                        progress(hashes.bytes(), image.size);
                    }
                    Err(e) => {
                        dropped = Some(e.to_string());
                        break;
                    }
                }
            }
            let short = image.size.is_some_and(|s| hashes.bytes() < s);
            if dropped.is_some() || short {
                // Written so far is kept: the part file is what a resume trusts.
                file.finish()
                    .await
                    .map_err(|e| failed(format!("{}: {e}", part.display())))?;
                resumed += 1;
                if resumed > RESUMES {
                    return Err(failed(format!(
                        "the download of image {} broke off {resumed} times (last: {}); {} of {} bytes are kept in {} and the next attempt resumes there",
                        image.id,
                        dropped.unwrap_or_else(|| "the answer ended early".into()),
                        hashes.bytes(),
                        image.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                        part.display()
                    )));
                }
                file = open(&part)?;
                continue;
            }
        }
        break;
    }
    file.finish()
        .await
        .map_err(|e| failed(format!("{}: {e}", part.display())))?;
    let d = hashes.finish().await.map_err(failed)?;
    let (bytes, sha256) = (d.bytes, d.sha256.clone());
    if let Err(why) = verify(image, bytes, &d.md5, &d.sha512) {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(failed(format!(
            "the download of image {} is not the image ({why}); it was removed",
            image.id
        )));
    }
    tokio::fs::rename(&part, dest)
        .await
        .map_err(|e| failed(format!("{} → {}: {e}", part.display(), dest.display())))?;
    Ok(Downloaded {
        path: dest.to_path_buf(),
        bytes,
        sha256,
        resumed,
    })
}

/// Every image whose name contains `part` (all when empty), following `next`.
pub async fn list(session: &Session, part: &str) -> Result<Vec<Image>, OpenStackError> {
    let mut all = Vec::new();
    let mut path = "v2/images".to_string();
    let mut query = vec![("limit", "100".to_string())];
    loop {
        let q = query.clone();
        let r = session
            .send(IMAGE, Method::GET, &path, |r| r.query(&q))
            .await?;
        let page: ImagePage = decode(&text(r).await?)?;
        all.extend(
            page.images
                .into_iter()
                .filter(|i| i.name.as_deref().unwrap_or("").contains(part)),
        );
        match page.next {
            Some(next) => {
                path = next.trim_start_matches('/').to_string();
                query.clear();
            }
            None => return Ok(all),
        }
    }
}

/// Deletes image `id`.
pub async fn delete(session: &Session, id: &str) -> Result<(), OpenStackError> {
    session
        .send(IMAGE, Method::DELETE, &format!("v2/images/{id}"), |r| r)
        .await?;
    Ok(())
}

/// Creates image `name` and uploads the file at `path` into it, streamed;
/// `sent` counts the bytes sent (from zero again if the upload is resent).
/// Returns the new image (queued or saving: wait for it to become active), the
/// file's MD5 and SHA-256, and its size.
pub async fn upload(
    session: &Session,
    name: &str,
    disk_format: &str,
    container_format: &str,
    path: &Path,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<(Image, String, String, u64), OpenStackError> {
    use std::sync::atomic::Ordering;
    let failed = |message: String| OpenStackError::Api {
        service: "image".into(),
        status: 0,
        message,
    };
    // Hashed first: the checksum Glance reports is compared with it after.
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let mut hashes = ParallelDigests::start();
    loop {
        let mut buf = vec![0u8; 1 << 20];
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        hashes.update(Bytes::from(buf)).await;
    }
    let hashed = hashes.finish().await.map_err(failed)?;
    let total = hashed.bytes;
    let body = serde_json::json!({
        "name": name, "disk_format": disk_format, "container_format": container_format, "visibility": "private"
    });
    let r = session
        .send(IMAGE, Method::POST, "v2/images", |r| r.json(&body))
        .await?;
    let image: Image = decode(&text(r).await?)?;
    let path_owned = path.to_path_buf();
    let make_body = move || {
        // Each attempt reads the file anew (a 401 renews the token and resends).
        let Ok(file) = std::fs::File::open(&path_owned) else {
            return reqwest::Body::from(Vec::new());
        };
        let sent = sent.clone();
        sent.store(0, Ordering::Relaxed);
        let stream =
            tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 20)
                .map(move |chunk| {
                    if let Ok(c) = &chunk {
                        sent.fetch_add(c.len() as u64, Ordering::Relaxed);
                    }
                    chunk
                });
        reqwest::Body::wrap_stream(stream)
    };
    session
        .send(
            IMAGE,
            Method::PUT,
            &format!("v2/images/{}/file", image.id),
            |r| {
                r.header("Content-Type", "application/octet-stream")
                    .header("Content-Length", total)
                    .body(make_body())
            },
        )
        .await?;
    Ok((image, hashed.md5, hashed.sha256, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Md5;
    use sha2::{Digest, Sha512};

    fn image(data: &[u8]) -> Image {
        Image {
            id: "i1".into(),
            name: Some("cluman_snapshot".into()),
            status: "active".into(),
            size: Some(data.len() as u64),
            checksum: Some(hex::encode(Md5::digest(data))),
            os_hash_algo: Some("sha512".into()),
            os_hash_value: Some(hex::encode(Sha512::digest(data))),
        }
    }

    #[test]
    fn a_download_is_the_image_only_when_size_and_both_hashes_match() {
        let data = b"qcow2 data";
        let i = image(data);
        let md5 = hex::encode(Md5::digest(data));
        let sha512 = hex::encode(Sha512::digest(data));
        assert_eq!(verify(&i, 10, &md5, &sha512), Ok(()));
        assert_eq!(
            verify(&i, 9, &md5, &sha512).unwrap_err(),
            "9 bytes arrived, the image has 10"
        );
        assert!(verify(&i, 10, &"0".repeat(32), &sha512)
            .unwrap_err()
            .starts_with("MD5"));
        assert!(verify(&i, 10, &md5, &"0".repeat(128))
            .unwrap_err()
            .starts_with("SHA-512"));
        let no_checksum = Image {
            checksum: None,
            ..i
        };
        assert!(verify(&no_checksum, 10, &md5, &sha512).is_err());
    }

    #[test]
    fn an_image_as_glance_answers_it() {
        let i: Image = serde_json::from_str(
            r#"{"id":"i1","name":"x","status":"active","visibility":"private","size":10,"virtual_size":null,
               "checksum":"abc","os_hash_algo":"sha512","os_hash_value":"def","disk_format":"qcow2","tags":[]}"#,
        )
        .unwrap();
        assert_eq!(i.size, Some(10));
        assert_eq!(
            part_path(Path::new("/store/a.qcow2")),
            Path::new("/store/a.qcow2.portal-part")
        );
    }
}
