//! The runbook catalogue over HTTP.

use crate::helpers::*;
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn operators_browse_the_catalogue_and_preview_a_procedure(pool: PgPool) {
    let app = spawn_app(pool).await;
    let op = app.signed_in("olga", Role::Operator).await;

    let list: serde_json::Value = op
        .call("/api/runbooks/list", &[])
        .await
        .json()
        .await
        .unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 12);
    let cron = list.iter().find(|r| r["id"] == "restore-cron").unwrap();
    assert_eq!(
        (cron["steps"].as_u64(), cron["destructive_steps"].as_u64()),
        (Some(4), Some(1))
    );

    let detail: serde_json::Value = op
        .call("/api/runbooks/show", &[("id", "restore-cron")])
        .await
        .json()
        .await
        .unwrap();
    let install = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "install-crontab")
        .unwrap();
    assert_eq!(install["destructive"], true);
    assert_eq!(install["host"], "{{ target }}");
    assert_eq!(
        install["action"],
        "crontab /var/tmp/crontab_{{ target }}_{{ backup_date }}.txt"
    );
    assert_eq!(detail["sha256"].as_str().map(str::len), Some(64));

    let page = op.get("/runbooks/restore-cron").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("4. Restore cron jobs") && html.contains("destructive · needs approval"));
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_runbooks_and_other_roles_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let op = app.signed_in("olga", Role::Operator).await;
    let (status, err) = error_text(op.call("/api/runbooks/show", &[("id", "nope")]).await).await;
    assert_eq!(
        (status, err),
        (
            StatusCode::NOT_FOUND,
            serde_json::json!({ "NotFound": "There is no runbook \"nope\"." })
        )
    );
    let auditor = app.signed_in("audrey", Role::Auditor).await;
    assert_eq!(
        auditor.get("/runbooks").await.status(),
        StatusCode::FORBIDDEN
    );
}
