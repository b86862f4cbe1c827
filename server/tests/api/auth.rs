//! Signing in and out, sessions, throttling, CSRF.

use crate::helpers::*;
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("portal_session="))
        .map(str::to_string)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("portal_session=")
        .to_string()
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_in_sets_a_hardened_cookie_and_a_new_session_id(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.add_user("alice", Role::Operator).await;
    app.add_user("bob", Role::Operator).await;
    let b = app.browser();

    let first = b.sign_in("alice", PASSWORD).await;
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = session_cookie(&first).expect("a session cookie is set");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );
    assert_eq!(b.me().await.as_deref(), Some("alice"));

    // Signing in again on the same browser must not keep the old id.
    let second = b.sign_in("bob", PASSWORD).await;
    let cookie2 = session_cookie(&second).expect("a new session cookie");
    assert_ne!(cookie_value(&cookie), cookie_value(&cookie2));

    // The old id no longer names a session.
    let stale = reqwest::Client::new()
        .post(format!("{}/api/auth/me", app.base))
        .header("origin", &app.base)
        .header(
            "cookie",
            format!("portal_session={}", cookie_value(&cookie)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(stale.text().await.unwrap(), "null");
}

#[sqlx::test(migrations = "../migrations")]
async fn cookies_are_secure_behind_an_https_public_url(pool: PgPool) {
    let app = spawn_app_with(pool, &[("PORTAL_PUBLIC_URL", "https://portal.example.net")]).await;
    app.add_user("alice", Role::Operator).await;
    let b = app.browser();
    let r = b.sign_in("alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(session_cookie(&r).unwrap().contains("Secure"));
}

#[sqlx::test(migrations = "../migrations")]
async fn session_idle_expiry_follows_the_setting(pool: PgPool) {
    let app = spawn_app_with(pool, &[("PORTAL_SESSION_IDLE_MINUTES", "7")]).await;
    app.signed_in("alice", Role::Operator).await;
    let seconds: f64 = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (expiry_date - now()))::float8 FROM tower_sessions.session",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        (6.0 * 60.0..=7.0 * 60.0 + 5.0).contains(&seconds),
        "{seconds}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn activity_slides_the_idle_expiry(pool: PgPool) {
    let app = spawn_app(pool).await;
    let b = app.signed_in("alice", Role::Operator).await;
    let expiry = || async {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
            "SELECT expiry_date FROM tower_sessions.session",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let first = expiry().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(b.me().await.as_deref(), Some("alice"));
    let second = expiry().await;
    assert!(
        second > first,
        "a request must push the idle expiry: {first} -> {second}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_user_and_wrong_password_look_the_same(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.add_user("alice", Role::Operator).await;
    let b = app.browser();
    let (s1, e1) = error_text(b.sign_in("alice", "wrong password here").await).await;
    let (s2, e2) = error_text(b.sign_in("nobody", "wrong password here").await).await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!((s1, &e1), (s2, &e2));
    assert_eq!(e1, serde_json::json!("BadCredentials"));
    // The audit trail tells them apart.
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT details->>'reason' FROM audit_events WHERE action = 'auth.sign_in_failed' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(reasons, ["wrong_password", "unknown_user"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_disabled_user_cannot_sign_in_and_loses_their_session(pool: PgPool) {
    let app = spawn_app(pool).await;
    let alice = app.signed_in("alice", Role::Operator).await;
    let admin = app.signed_in("root-admin", Role::Admin).await;
    let r = admin
        .call("/api/users/disable", &[("username", "alice")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(alice.me().await, None, "the disabled user's session ended");
    let (status, err) = error_text(app.browser().sign_in("alice", PASSWORD).await).await;
    assert_eq!(
        (status, err),
        (
            StatusCode::UNAUTHORIZED,
            serde_json::json!("BadCredentials")
        )
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn repeated_failures_slow_the_username_at_that_address_without_locking_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.add_user("alice", Role::Operator).await;
    let b = app.browser();
    for _ in 0..3 {
        assert_eq!(
            b.sign_in("alice", "not the password!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The fourth attempt waits, even with the right password: seconds, not minutes.
    let (status, err) = error_text(b.sign_in("alice", PASSWORD).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(err["Throttled"]["per_account"], true, "{err}");
    let seconds = err["Throttled"]["seconds"].as_i64().unwrap();
    assert!((1..=2).contains(&seconds), "{err}");
    // Another username is not affected.
    app.add_user("bob", Role::Operator).await;
    assert_eq!(b.sign_in("bob", PASSWORD).await.status(), StatusCode::OK);
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&("anon:alice".into(), "auth.sign_in_throttled".into())),
        "{actions:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_out_destroys_the_session(pool: PgPool) {
    let app = spawn_app(pool).await;
    let b = app.signed_in("alice", Role::Operator).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, 1);
    assert_eq!(
        b.call("/api/auth/sign_out", &[]).await.status(),
        StatusCode::OK
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(after, 0);
    assert_eq!(b.me().await, None);
    assert!(app
        .audit_actions()
        .await
        .contains(&("alice".into(), "auth.sign_out".into())));
}

#[sqlx::test(migrations = "../migrations")]
async fn changing_the_password_ends_the_other_sessions_only(pool: PgPool) {
    let app = spawn_app(pool).await;
    let laptop = app.signed_in("alice", Role::Operator).await;
    let phone = app.browser();
    assert_eq!(
        phone.sign_in("alice", PASSWORD).await.status(),
        StatusCode::OK
    );

    let new = "an entirely new passphrase";
    let r = laptop
        .call(
            "/api/account/change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    assert_eq!(laptop.me().await.as_deref(), Some("alice"));
    assert_eq!(phone.me().await, None);
    assert_eq!(
        app.browser().sign_in("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.browser().sign_in("alice", new).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn password_change_errors_name_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    let b = app.signed_in("alice", Role::Operator).await;
    let cases = [
        (
            "wrong current pw",
            "an entirely new passphrase",
            "an entirely new passphrase",
            "Current password",
        ),
        (PASSWORD, "short", "short", "New password"),
        (
            PASSWORD,
            "an entirely new passphrase",
            "something else entirely",
            "New password",
        ),
    ];
    for (current, new, confirm, field) in cases {
        let r = b
            .call(
                "/api/account/change_password",
                &[
                    ("current_password", current),
                    ("new_password", new),
                    ("confirm_password", confirm),
                ],
            )
            .await;
        let (status, err) = error_text(r).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["Invalid"]["field"], field, "{err}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn cross_site_posts_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.add_user("alice", Role::Operator).await;
    let url = format!("{}/api/auth/sign_in", app.base);
    let form = [("username", "alice"), ("password", PASSWORD)];
    let plain = reqwest::Client::new();
    let foreign = plain
        .post(&url)
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(foreign.text().await.unwrap().contains("another origin"));
    let cross = plain
        .post(&url)
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // No page of the portal posts without one (a bookmark or address bar does
    // not post): `none` is refused, even with the portal's Origin.
    let unpaged = plain
        .post(&url)
        .header("sec-fetch-site", "none")
        .header("origin", &app.base)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(unpaged.status(), StatusCode::FORBIDDEN);
    assert!(unpaged
        .text()
        .await
        .unwrap()
        .contains("not sent by one of the portal's pages"));
    let bare = plain.post(&url).form(&form).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let same = plain
        .post(&url)
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_pending_password_change_blocks_everything_but_account(pool: PgPool) {
    let app = spawn_app(pool).await;
    app::ssr::users::create(
        &app.pool,
        &app::ssr::audit::Actor::System,
        "newbie",
        Role::Admin,
        PASSWORD.into(),
        true,
    )
    .await
    .unwrap();
    let b = app.browser();
    let r = b.sign_in("newbie", PASSWORD).await;
    assert_eq!(r.json::<String>().await.unwrap(), "/account");
    let (status, err) = error_text(b.call("/api/users/list", &[]).await).await;
    assert_eq!(
        (status, err),
        (
            StatusCode::FORBIDDEN,
            serde_json::json!("PasswordChangeRequired")
        )
    );
    let new = "my own passphrase now";
    let r = b
        .call(
            "/api/account/change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        b.call("/api/users/list", &[]).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn static_files_do_not_touch_the_session(pool: PgPool) {
    let app = spawn_app(pool).await;
    let b = app.signed_in("alice", Role::Operator).await;
    let expiry = || async {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
            "SELECT expiry_date FROM tower_sessions.session",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let first = expiry().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = b.get("/pkg/recovery-portal.css").await;
    assert!(session_cookie(&r).is_none());
    assert_eq!(
        expiry().await,
        first,
        "a static file request must not save the session"
    );
}
