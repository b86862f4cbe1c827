//! Pages as a browser without JavaScript gets them: redirects, 403 and 404.

use crate::helpers::*;
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[sqlx::test(migrations = "../migrations")]
async fn anonymous_visitors_are_sent_to_sign_in(pool: PgPool) {
    let app = spawn_app(pool).await;
    let b = app.browser();
    let r = b.get("/users").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Fusers");
    let r = b.get("/login").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    for needle in [
        "<label for=\"username\">Username</label>",
        "<label for=\"password\">Password</label>",
        ">Sign in</button>",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_role_without_the_permission_gets_a_readable_403(pool: PgPool) {
    let app = spawn_app(pool).await;
    let op = app.signed_in("olga", Role::Operator).await;
    let r = op.get("/users").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("403 · Not allowed"));
    let r = op.get("/").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("olga") && html.contains("operator"),
        "home shows user and role"
    );
    let r = op.get("/login").await;
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/".to_string())
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_pages_are_404(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.browser().get("/no/such/page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("404 · Page not found"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_pending_password_change_leads_to_account(pool: PgPool) {
    let app = spawn_app(pool).await;
    app::ssr::users::create(
        &app.pool,
        &app::ssr::audit::Actor::System,
        "newbie",
        Role::Auditor,
        PASSWORD.into(),
        true,
    )
    .await
    .unwrap();
    let b = app.browser();
    b.sign_in("newbie", PASSWORD).await;
    let r = b.get("/audit").await;
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/account".to_string())
    );
    assert_eq!(b.get("/account").await.status(), StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_in_and_out_work_without_javascript(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.add_user("olga", Role::Operator).await;
    let b = app.browser();
    let form = |path: &str, body: &[(&str, &str)]| {
        b.http
            .post(format!("{}{}", app.base, path))
            .header("accept", "text/html")
            .header("referer", format!("{}/login", app.base))
            .form(body)
            .send()
    };
    let r = form(
        "/api/auth/sign_in",
        &[
            ("username", "olga"),
            ("password", PASSWORD),
            ("next", "/account"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/account".to_string())
    );
    assert_eq!(b.me().await.as_deref(), Some("olga"));
    let r = form("/api/auth/sign_out", &[]).await.unwrap();
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/login".to_string())
    );
    assert_eq!(b.me().await, None);
}
