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
