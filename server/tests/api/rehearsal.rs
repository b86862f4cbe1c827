//! Every procedure rehearsed end to end on the lab, as a shift would do it: an
//! operator runs each step (OpenStack, SSH, ESC, transfers and waits), confirms
//! the manual ones, and asks for approval of each destructive one, which one
//! supervisor (two for the database import) approves. The procedures run in
//! order on one lab, so the restore of procedure 2 uses procedure 1's snapshot.

use crate::helpers::*;
use crate::lab_portal::*;

use app::model::Role;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn every_procedure_is_rehearsed_end_to_end_on_the_lab_with_approvals(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    p.lab.seed_backup_store(&p.store, "lab", &date).unwrap();
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let sue = p.app.signed_in("sue", Role::Supervisor).await;
    let seeded_snapshot =
        std::fs::read(p.store.join(format!("lab/{date}/cluman_snapshot.qcow2"))).unwrap();
    let mut problems = Vec::new();
    let mut approvals = 0;
    let runbooks = shipped_runbooks();
    assert_eq!(runbooks.len(), 12);
    for rb in &runbooks {
        let run = start_on_lab(&olga, &rb.id).await;
        match drive(&olga, &[&sam, &sue], &rb.id, run, None).await {
            Ok(n) => {
                eprintln!("{}: rehearsed end to end, {n} approvals", rb.id);
                approvals += n;
            }
            Err(e) => problems.push(e),
        }
        if rb.id == "cps-backup" {
            // The snapshot went through Nova and Glance into the store.
            let stored =
                std::fs::read(p.store.join(format!("lab/{date}/cluman_snapshot.qcow2"))).unwrap();
            assert_ne!(
                stored, seeded_snapshot,
                "procedure 1 stored the cloud's snapshot"
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(approvals >= 15, "{approvals}");
    // The Cluster Manager came back from procedure 1's snapshot with its state
    // (the backup archive procedure 1 exported is on it).
    let cluman = p.lab.openstack().server("cluman").unwrap();
    assert_eq!(cluman.status, "ACTIVE");
    assert!(
        cluman.history.iter().any(|(s, _)| s == "REBUILD"),
        "{:?}",
        cluman.history
    );
    assert!(
        p.lab.state().all_monitored(),
        "monit watches everything again"
    );
    p.lab.shutdown().await;
}
