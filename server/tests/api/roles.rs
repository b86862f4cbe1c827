//! Every server function, called by every role: admitted or refused exactly as
//! this table says. A server function missing from the table fails the test, so
//! none can be added without deciding who may call it.

use crate::helpers::*;
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug)]
enum Admits {
    /// Anyone, signed in or not.
    Anyone,
    /// Any signed-in user.
    SignedIn,
    /// Signed-in users with one of these roles.
    Roles(&'static [Role]),
}

const TEMP: &str = "temporary passphrase 1";

/// Path, who is admitted, and arguments that make an admitted call succeed or fail
/// only on its merits.
/// Form arguments of a call.
type Form = &'static [(&'static str, &'static str)];

const MATRIX: &[(&str, Admits, Form)] = &[
    ("/api/auth/me", Admits::Anyone, &[]),
    (
        "/api/auth/sign_in",
        Admits::Anyone,
        &[("username", "target"), ("password", PASSWORD)],
    ),
    ("/api/auth/sign_out", Admits::Anyone, &[]),
    (
        "/api/account/change_password",
        Admits::SignedIn,
        &[
            ("current_password", "not the password"),
            ("new_password", "irrelevant passphrase"),
            ("confirm_password", "irrelevant passphrase"),
        ],
    ),
    ("/api/users/list", Admits::Roles(&[Role::Admin]), &[]),
    (
        "/api/users/create",
        Admits::Roles(&[Role::Admin]),
        &[
            ("username", "created"),
            ("role", "operator"),
            ("password", TEMP),
        ],
    ),
    (
        "/api/users/disable",
        Admits::Roles(&[Role::Admin]),
        &[("username", "victim")],
    ),
    (
        "/api/users/enable",
        Admits::Roles(&[Role::Admin]),
        &[("username", "victim")],
    ),
    (
        "/api/users/set_contact",
        Admits::Roles(&[Role::Admin]),
        &[("username", "victim"), ("email", "victim@example.net")],
    ),
    ("/api/users/oversight", Admits::Roles(&[Role::Admin]), &[]),
    (
        "/api/users/notice_count",
        Admits::Roles(&[Role::Admin]),
        &[],
    ),
    (
        "/api/users/acknowledge_notices",
        Admits::Roles(&[Role::Admin]),
        &[("up_to", "0")],
    ),
    (
        "/api/users/unlock",
        Admits::Roles(&[Role::Admin]),
        &[("username", "victim")],
    ),
    (
        "/api/users/reset_password",
        Admits::Roles(&[Role::Admin]),
        &[("username", "victim"), ("password", TEMP)],
    ),
    (
        "/api/users/change_role",
        Admits::Roles(&[Role::Admin]),
        &[("username", "victim"), ("role", "auditor")],
    ),
    (
        "/api/audit/events",
        Admits::Roles(&[Role::Auditor, Role::Supervisor, Role::Admin]),
        &[],
    ),
    (
        "/api/audit/refresh",
        Admits::Roles(&[Role::Auditor, Role::Supervisor, Role::Admin]),
        &[],
    ),
    (
        "/api/audit/event",
        Admits::Roles(&[Role::Auditor, Role::Supervisor, Role::Admin]),
        &[("id", "1")],
    ),
    (
        "/api/audit/verification",
        Admits::Roles(&[Role::Auditor, Role::Supervisor, Role::Admin]),
        &[],
    ),
    (
        "/api/audit/verify",
        Admits::Roles(&[Role::Auditor, Role::Supervisor, Role::Admin]),
        &[],
    ),
    (
        "/api/runs/report",
        Admits::Roles(&[Role::Auditor, Role::Supervisor, Role::Admin]),
        &[("id", "999")],
    ),
    (
        "/api/runbooks/list",
        Admits::Roles(&[Role::Operator, Role::Supervisor]),
        &[],
    ),
    (
        "/api/runbooks/show",
        Admits::Roles(&[Role::Operator, Role::Supervisor]),
        &[("id", "verify-recovery")],
    ),
    (
        "/api/runs/sites",
        Admits::Roles(&[Role::Operator, Role::Supervisor]),
        &[],
    ),
    (
        "/api/runs/start",
        Admits::Roles(&[Role::Operator, Role::Supervisor]),
        &[("runbook", "verify-recovery"), ("site", "nowhere")],
    ),
    ("/api/runs/list", Admits::SignedIn, &[("filter", "all")]),
    ("/api/runs/show", Admits::SignedIn, &[("id", "1")]),
    ("/api/runs/refresh", Admits::SignedIn, &[("id", "1")]),
    (
        "/api/runs/output",
        Admits::SignedIn,
        &[("attempt", "1"), ("before_seq", "10")],
    ),
    (
        "/api/runs/step",
        Admits::Roles(&[Role::Operator, Role::Supervisor]),
        &[("run", "1"), ("position", "0"), ("command", "run")],
    ),
    (
        "/api/runs/parameter",
        Admits::Roles(&[Role::Operator, Role::Supervisor]),
        &[("run", "1"), ("name", "x"), ("value", "y"), ("reason", "z")],
    ),
    (
        "/api/approvals/list",
        Admits::Roles(&[Role::Supervisor]),
        &[],
    ),
    (
        "/api/approvals/refresh",
        Admits::Roles(&[Role::Supervisor]),
        &[],
    ),
    ("/api/approvals/show", Admits::SignedIn, &[("id", "1")]),
    ("/api/approvals/count", Admits::SignedIn, &[]),
    (
        "/api/approvals/decide",
        Admits::Roles(&[Role::Supervisor]),
        &[("id", "1"), ("decision", "approve")],
    ),
    (
        "/api/sites/break_glass",
        Admits::Roles(&[Role::Admin]),
        &[("site", "nowhere"), ("reason", "drill")],
    ),
    (
        "/api/runs/cancel",
        Admits::Roles(&[Role::Operator, Role::Supervisor]),
        &[("run", "1"), ("reason", "drill over")],
    ),
    (
        "/api/runs/take_over",
        Admits::Roles(&[Role::Operator, Role::Supervisor]),
        &[("run", "1"), ("reason", "olga went off shift")],
    ),
    ("/api/sites/overview", Admits::Roles(&[Role::Admin]), &[]),
    (
        "/api/sites/import_known_hosts",
        Admits::Roles(&[Role::Admin]),
        &[("site", "nowhere"), ("known_hosts", "x")],
    ),
    (
        "/api/sites/confirm_key",
        Admits::Roles(&[Role::Admin]),
        &[
            ("site", "nowhere"),
            ("host", "cluman"),
            ("fingerprint", "SHA256:x"),
        ],
    ),
    (
        "/api/sites/define",
        Admits::Roles(&[Role::Admin]),
        &[("definition", "not toml")],
    ),
    (
        "/api/sites/lab_fault",
        Admits::Roles(&[Role::Admin]),
        &[("fault", "host-down:qns01"), ("on", "true")],
    ),
    (
        "/api/notifications/overview",
        Admits::Roles(&[Role::Admin]),
        &[],
    ),
    (
        "/api/notifications/add_webhook",
        Admits::Roles(&[Role::Admin]),
        &[
            ("site", "nowhere"),
            ("url", "https://hooks.example.net/portal"),
            ("secret", "a secret of sixteen characters or more"),
        ],
    ),
    (
        "/api/notifications/add_email",
        Admits::Roles(&[Role::Admin]),
        &[("site", "nowhere"), ("address", "oncall@example.net")],
    ),
    (
        "/api/notifications/remove",
        Admits::Roles(&[Role::Admin]),
        &[("id", "999999")],
    ),
];

#[test]
fn every_server_function_is_in_the_matrix() {
    let registered: BTreeSet<String> = server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect();
    let listed: BTreeSet<String> = MATRIX.iter().map(|(p, _, _)| p.to_string()).collect();
    assert_eq!(
        registered, listed,
        "server functions and the role matrix differ: add the new function to MATRIX with the roles it admits"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn each_role_is_admitted_exactly_where_the_matrix_says(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.add_user("target", Role::Operator).await;
    app.add_user("victim", Role::Operator).await;
    for role in Role::ALL {
        app.add_user(&format!("as-{role}"), role).await;
    }
    let mut callers: Vec<Option<Role>> = vec![None];
    callers.extend(Role::ALL.map(Some));

    for (path, admits, args) in MATRIX {
        for caller in &callers {
            // A fresh browser per call: sign-out and role changes must not leak.
            let browser = app.browser();
            if let Some(role) = caller {
                assert_eq!(
                    browser
                        .sign_in(&format!("as-{role}"), PASSWORD)
                        .await
                        .status(),
                    StatusCode::OK
                );
            }
            let response = browser.call(path, args).await;
            let status = response.status();
            let body = response.text().await.unwrap();
            let admitted = match (admits, caller) {
                (Admits::Anyone, _) => true,
                (_, None) => false,
                (Admits::SignedIn, Some(_)) => true,
                (Admits::Roles(roles), Some(role)) => roles.contains(role),
            };
            let who = caller
                .map(|r| r.to_string())
                .unwrap_or_else(|| "anonymous".into());
            if admitted {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{path} must admit {who}, got {status}: {body}"
                );
            } else {
                let expected = if caller.is_none() {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(status, expected, "{path} must refuse {who}: {body}");
            }
        }
    }
}
