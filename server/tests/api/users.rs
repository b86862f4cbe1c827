//! User administration through the server functions the Users page uses.

use crate::helpers::*;
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;

const TEMP: &str = "temporary passphrase 1";

#[sqlx::test(migrations = "../migrations")]
async fn an_admin_manages_a_user_through_its_life(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.signed_in("chief", Role::Admin).await;

    let r = admin
        .call(
            "/api/users/create",
            &[
                ("username", "Bob"),
                ("role", "operator"),
                ("password", TEMP),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["username"], "bob");
    assert_eq!(created["must_change_password"], true);

    let bob = app.browser();
    assert_eq!(
        bob.sign_in("bob", TEMP)
            .await
            .json::<String>()
            .await
            .unwrap(),
        "/account"
    );

    let r = admin
        .call(
            "/api/users/change_role",
            &[("username", "bob"), ("role", "supervisor")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        bob.me().await,
        None,
        "a role change ends the user's sessions"
    );

    let r = admin
        .call(
            "/api/users/reset_password",
            &[("username", "bob"), ("password", "another temporary one")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        admin
            .call("/api/users/disable", &[("username", "bob")])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        admin
            .call("/api/users/enable", &[("username", "bob")])
            .await
            .status(),
        StatusCode::OK
    );

    let actions: Vec<String> = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|(actor, _)| actor == "chief")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        actions,
        [
            "auth.sign_in",
            "user.created",
            "user.role_changed",
            "user.password_reset",
            "user.disabled",
            "user.enabled"
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_input_is_refused_with_the_field_named(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.signed_in("chief", Role::Admin).await;
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Form, StatusCode, &str); 6] = [
        (
            "/api/users/create",
            &[
                ("username", "b ob"),
                ("role", "operator"),
                ("password", TEMP),
            ],
            StatusCode::BAD_REQUEST,
            "Username",
        ),
        (
            "/api/users/create",
            &[("username", "bob"), ("role", "root"), ("password", TEMP)],
            StatusCode::BAD_REQUEST,
            "Role",
        ),
        (
            "/api/users/create",
            &[
                ("username", "bob"),
                ("role", "operator"),
                ("password", "short"),
            ],
            StatusCode::BAD_REQUEST,
            "Password",
        ),
        (
            "/api/users/disable",
            &[("username", "ghost")],
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            "/api/users/disable",
            &[("username", "chief")],
            StatusCode::CONFLICT,
            "",
        ),
        (
            "/api/users/create",
            &[("username", "bob")],
            StatusCode::BAD_REQUEST,
            "",
        ),
    ];
    for (path, form, status, field) in cases {
        let (got, err) = error_text(admin.call(path, form).await).await;
        assert_eq!(got, status, "{path} {form:?}: {err}");
        if !field.is_empty() {
            assert_eq!(err["Invalid"]["field"], field, "{err}");
        }
    }
    admin
        .call(
            "/api/users/create",
            &[
                ("username", "bob"),
                ("role", "operator"),
                ("password", TEMP),
            ],
        )
        .await;
    let (got, err) = error_text(
        admin
            .call(
                "/api/users/create",
                &[
                    ("username", "BOB"),
                    ("role", "operator"),
                    ("password", TEMP),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(got, StatusCode::CONFLICT);
    assert_eq!(err["Conflict"], "A user named bob already exists.");
}

/// One admin cannot quietly get round four eyes: a password reset of a supervisor
/// forces a change and is shown to the other admins until they have seen it, and
/// an admin and a supervisor account of one person are pointed out.
#[sqlx::test(migrations = "../migrations")]
async fn other_admins_see_what_one_admin_did_and_one_persons_two_accounts(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = app.signed_in("ada", Role::Admin).await;
    let bea = app.signed_in("bea", Role::Admin).await;
    app.add_user("sam", Role::Supervisor).await;

    let r = ada
        .call(
            "/api/users/reset_password",
            &[("username", "sam"), ("password", "Temporary-pass-123")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let must_change: bool =
        sqlx::query_scalar("SELECT must_change_password FROM users WHERE username = 'sam'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        must_change,
        "a reset by an admin forces a change at sign-in"
    );

    // bea is told; ada is not told about her own change.
    let count = |b: &Browser| {
        let b = b.http.clone();
        let url = format!("{}/api/users/notice_count", app.base);
        let origin = app.base.clone();
        async move {
            let r = b.post(url).header("origin", origin).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<i64>().await.unwrap()
        }
    };
    assert_eq!(count(&bea).await, 1);
    assert_eq!(count(&ada).await, 0);
    let r = bea.call("/api/users/oversight", &[]).await;
    let o: serde_json::Value = r.json().await.unwrap();
    assert_eq!(o["notices"][0]["actor"], "ada");
    assert_eq!(o["notices"][0]["what"], "reset the password of sam");
    assert_eq!(o["notices"][0]["unseen"], true);
    let id = o["notices"][0]["event_id"].as_i64().unwrap().to_string();
    let r = bea
        .call("/api/users/acknowledge_notices", &[("up_to", &id)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(count(&bea).await, 0);

    // ada creates a supervisor account for herself: same e-mail address.
    let r = ada
        .call(
            "/api/users/set_contact",
            &[("username", "ada"), ("email", "Ada@Example.net")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = ada
        .call(
            "/api/users/create",
            &[
                ("username", "ada2"),
                ("role", "supervisor"),
                ("password", "Temporary-pass-123"),
                ("email", "ada@example.net"),
                ("display_name", "Ada L."),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let o: serde_json::Value = bea
        .call("/api/users/oversight", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        o["shared"],
        serde_json::json!([{ "admin": "ada", "supervisor": "ada2", "shared": "e-mail address ada@example.net" }])
    );
    let whats: Vec<&str> = o["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["what"].as_str())
        .collect();
    assert!(
        whats.contains(&"created ada2 with the role supervisor"),
        "{whats:?}"
    );
    // A bad address is refused with the field named, and creates nothing.
    let r = ada
        .call(
            "/api/users/create",
            &[
                ("username", "ada3"),
                ("role", "supervisor"),
                ("password", "Temporary-pass-123"),
                ("email", "not an address"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("E-mail"));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE username = 'ada3'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}
