//! Mongo: the `mongo` shell (the `--eval` expressions and interactive lines the
//! procedures use), `mongodump`, `mongorestore`, `env_export.sh --mongo` and
//! `build_set.sh`. Data lives in the replica sets of the site state as
//! document counts per collection; dumps are real archives whose `.bson`
//! members are small JSON stand-ins carrying those counts.

use super::getopt;
use crate::archive::{self, Entry};
use crate::outputs;
use crate::shell::{Io, Shell};
use crate::state::topology::MemberRole;
use crate::state::vfs;
use crate::state::Site;
use regex::Regex;

/// Archive members for every database: `<prefix><db>/<coll>.bson` and its
/// `.metadata.json`, the layout `mongodump` writes and `mongorestore` reads.
pub fn dump_entries(site: &Site, prefix: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for set in &site.replica_sets {
        for (db, colls) in &set.databases {
            for (coll, count) in colls {
                let bson = serde_json::json!({
                    "lab_simulated_bson": true,
                    "db": db,
                    "collection": coll,
                    "documents": count,
                });
                out.push(Entry::file(
                    format!("{prefix}{db}/{coll}.bson"),
                    format!("{bson}\n"),
                ));
                out.push(Entry::file(
                    format!("{prefix}{db}/{coll}.metadata.json"),
                    format!("{{\"options\":{{}},\"indexes\":[{{\"v\":2,\"key\":{{\"_id\":1}},\"name\":\"_id_\",\"ns\":\"{db}.{coll}\"}}]}}\n"),
                ));
            }
        }
    }
    out
}

/// Reads the document count of a dumped collection.
fn dumped_count(data: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    v.get("documents")?.as_u64()
}

/// Restores `.bson` members under `prefix` into the sets holding their
/// databases (a database no set holds goes to the first set). Returns what
/// was restored: (db, collection, documents).
pub fn restore_entries(
    site: &mut Site,
    entries: &[Entry],
    prefix: &str,
) -> Vec<(String, String, u64)> {
    let mut restored = Vec::new();
    for e in entries {
        let Some(rest) = e.name.strip_prefix(prefix) else {
            continue;
        };
        let Some(stem) = rest.strip_suffix(".bson") else {
            continue;
        };
        let parts: Vec<&str> = stem.split('/').collect();
        let [.., db, coll] = parts.as_slice() else {
            continue;
        };
        let Some(count) = dumped_count(&e.data) else {
            continue;
        };
        // The set that holds the database now, else the one the blueprint
        // gives it, else the first.
        let blueprint = crate::state::topology::SETS
            .iter()
            .find(|s| s.databases.iter().any(|(d, _)| d == db))
            .map(|s| s.name);
        let index = site
            .replica_sets
            .iter()
            .position(|r| r.databases.contains_key(*db))
            .or_else(|| blueprint.and_then(|n| site.replica_sets.iter().position(|r| r.name == n)))
            .or(if site.replica_sets.is_empty() {
                None
            } else {
                Some(0)
            });
        if let Some(set) = index.and_then(|i| site.replica_sets.get_mut(i)) {
            set.databases
                .entry((*db).to_string())
                .or_default()
                .insert((*coll).to_string(), count);
            restored.push(((*db).to_string(), (*coll).to_string(), count));
        }
    }
    restored
}

/// Where a mongo client connects: the member named and the set on that port.
fn connect(sh: &Shell, host: &str, port: u16) -> Result<(String, MemberRole, bool), Vec<String>> {
    let down = sh.faults.host_down(host);
    sh.state.with(|s| {
        let ip = s
            .host(host)
            .map(|h| h.ip.clone())
            .unwrap_or_else(|| host.to_string());
        let fail = || outputs::mongo_connect_failed(host, &ip, port);
        let set = s.set_by_port(port).ok_or_else(fail)?;
        let member = set
            .members
            .iter()
            .find(|m| m.host == host)
            .ok_or_else(fail)?;
        if down || !s.member_running(set, member) {
            return Err(fail());
        }
        let views = outputs::member_views(s, set, false, false);
        let primary = views.iter().any(|v| v.host == host && v.state == "PRIMARY");
        Ok((set.name.clone(), member.role, primary))
    })
}

/// `mongo [--host H] [--port P] [--quiet] [--eval JS] [host:port/db]`.
pub fn mongo(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(
        args,
        "up",
        &[
            "host",
            "port",
            "eval",
            "username",
            "password",
            "authenticationDatabase",
        ],
    ) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("Error parsing command line: {e}"));
            return 2;
        }
    };
    let mut host = o.long_value("host").unwrap_or("localhost").to_string();
    let mut port: u16 = 27017;
    let mut db = "test".to_string();
    if let Some(target) = o.args.first() {
        let (hp, d) = target.split_once('/').unwrap_or((target, "test"));
        db = d.to_string();
        match hp.split_once(':') {
            Some((h, p)) => {
                host = h.to_string();
                port = p.parse().unwrap_or(port);
            }
            None => host = hp.to_string(),
        }
    }
    // A replica-set URI `set01/sessionmgr01:27717,...`: the first member.
    if let Some((_, members)) = host.clone().split_once('/') {
        host = members.split(',').next().unwrap_or("").to_string();
    }
    if let Some((h, p)) = host.clone().split_once(':') {
        host = h.to_string();
        port = p.parse().unwrap_or(port);
    }
    if let Some(p) = o.long_value("port") {
        match p.parse() {
            Ok(p) => port = p,
            Err(_) => {
                io.errln(format!("Error parsing option \"port\" as int: {p}"));
                return 2;
            }
        }
    }
    if host == "localhost" || host == "127.0.0.1" {
        host = sh.host.clone();
    }
    let quiet = o.has_long("quiet");
    let (set, role, primary) = match connect(sh, &host, port) {
        Ok(c) => c,
        Err(lines) => {
            for l in lines {
                io.errln(l);
            }
            return 1;
        }
    };
    if !quiet {
        for l in outputs::mongo_banner(&host, port) {
            io.outln(l);
        }
    }
    let ctx = MongoCtx {
        set,
        role,
        primary,
        db,
    };
    match o.long_value("eval") {
        Some(js) => match eval(sh, &ctx, js) {
            Ok(lines) => {
                for l in lines {
                    io.outln(l);
                }
                0
            }
            Err(e) => {
                io.errln(format!(
                    "{} E QUERY    [thread1] {e}",
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                ));
                252
            }
        },
        None => {
            let mut ctx = ctx;
            let mut status = 0;
            for line in io
                .stdin_text()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                if matches!(line, "exit" | "quit()" | "exit;") {
                    break;
                }
                if let Some(d) = line.strip_prefix("use ") {
                    ctx.db = d.trim().trim_end_matches(';').to_string();
                    io.outln(format!("switched to db {}", ctx.db));
                    continue;
                }
                match eval(sh, &ctx, line) {
                    Ok(lines) => {
                        for l in lines {
                            io.outln(l);
                        }
                    }
                    Err(e) => {
                        io.errln(format!(
                            "{} E QUERY    [thread1] {e}",
                            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                        ));
                        status = 1;
                    }
                }
            }
            io.outln("bye");
            status
        }
    }
}

struct MongoCtx {
    set: String,
    role: MemberRole,
    primary: bool,
    db: String,
}

/// Evaluates the shell expressions the procedures use. Anything else is
/// refused with a message naming what the lab understands.
fn eval(sh: &Shell, ctx: &MongoCtx, js: &str) -> Result<Vec<String>, String> {
    let compact: String = js.split_whitespace().collect::<Vec<_>>().join(" ");
    let reads_data = !compact.starts_with("rs.") && !compact.contains("db.version()");
    if reads_data && ctx.role == MemberRole::Arbiter {
        return Err("Error: error: { \"ok\" : 0, \"errmsg\" : \"node is not in primary or recovering state\", \"code\" : 13436 }".to_string());
    }
    let slave_ok = compact.contains("slaveOk") || compact.contains("secondaryOk");
    if reads_data && !ctx.primary && !slave_ok {
        return Err("Error: listDatabases failed:{ \"ok\" : 0, \"errmsg\" : \"not master and slaveOk=false\", \"code\" : 13435, \"codeName\" : \"NotMasterNoSlaveOk\" }".to_string());
    }
    let quoted = r#"["']([^"']+)["']"#;
    let sibling =
        Regex::new(&format!(r"getSiblingDB\(\s*{quoted}\s*\)")).map_err(|e| e.to_string())?;
    let db = sibling
        .captures(&compact)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| ctx.db.clone());
    sh.state.with(|s| {
        let set = s
            .replica_sets
            .iter()
            .find(|r| r.name == ctx.set)
            .ok_or_else(|| "Error: not connected".to_string())?;
        let mut dbs: Vec<String> = vec!["admin".into(), "config".into(), "local".into()];
        dbs.extend(set.databases.keys().cloned());
        dbs.sort();
        if compact.contains("listDatabases") || compact == "show dbs" {
            return Ok(if compact == "show dbs" {
                dbs.iter().map(|d| format!("{d:<14}0.{:03}GB", d.len() * 37 % 1000)).collect()
            } else {
                dbs
            });
        }
        if compact.contains("getCollectionNames") || compact == "show collections" {
            let names: Vec<String> = set
                .databases
                .get(&db)
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            return Ok(if compact.contains("forEach") || compact == "show collections" {
                names
            } else {
                vec![format!(
                    "[ {} ]",
                    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
                )]
            });
        }
        if compact.contains(".count()") {
            let get_collection = Regex::new(&format!(r"getCollection\(\s*{quoted}\s*\)\.count\(\)")).map_err(|e| e.to_string())?;
            let dotted = Regex::new(r"\.([A-Za-z_][A-Za-z0-9_]*)\.count\(\)").map_err(|e| e.to_string())?;
            let coll = get_collection
                .captures(&compact)
                .or_else(|| dotted.captures(&compact))
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_string())
                .ok_or_else(|| format!("SyntaxError: cannot read the collection in: {compact}"))?;
            let n = set.databases.get(&db).and_then(|c| c.get(&coll)).copied().unwrap_or(0);
            return Ok(vec![n.to_string()]);
        }
        if compact.contains("db.version()") {
            return Ok(vec![outputs::MONGO_VERSION.to_string()]);
        }
        if compact.contains("rs.isMaster()") || compact.contains("db.isMaster()") {
            return Ok(vec![ctx.primary.to_string()]);
        }
        if compact.contains("rs.status()") {
            let views = outputs::member_views(s, set, false, false);
            let mut out = vec!["{".to_string(), format!("\t\"set\" : \"{}\",", set.name), "\t\"members\" : [".to_string()];
            for (i, v) in views.iter().enumerate() {
                out.push(format!(
                    "\t\t{{ \"_id\" : {i}, \"name\" : \"{}:{}\", \"health\" : {}, \"stateStr\" : \"{}\" }}{}",
                    v.host,
                    set.port,
                    if v.health == "ON-LINE" { 1 } else { 0 },
                    v.state,
                    if i + 1 < views.len() { "," } else { "" }
                ));
            }
            out.push("\t],".to_string());
            out.push("\t\"ok\" : 1".to_string());
            out.push("}".to_string());
            return Ok(out);
        }
        Err(format!(
            "ReferenceError: the lab's mongo shell answers listDatabases, getCollectionNames(), count(), rs.status(), rs.isMaster() and db.version(), not: {compact}"
        ))
    })
}

/// `mongodump [--host H --port P] [--db DB] [--out DIR]`.
pub async fn mongodump(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "hdo", &["host", "port", "db", "out"]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("error parsing command line options: {e}"));
            return 2;
        }
    };
    let out = sh.path(o.long_value("out").or(o.value('o')).unwrap_or("dump"));
    let only = o.long_value("db").or(o.value('d')).map(str::to_string);
    let entries: Vec<Entry> = sh
        .state
        .with(|s| dump_entries(s, ""))
        .into_iter()
        .filter(|e| {
            only.as_deref()
                .is_none_or(|d| e.name.starts_with(&format!("{d}/")))
        })
        .collect();
    for e in &entries {
        if let Some(stem) = e.name.strip_suffix(".bson") {
            io.errln(outputs::mongo_tool_log(&format!(
                "writing {} to {out}/{}.bson",
                stem.replace('/', "."),
                stem
            )));
        }
        let path = vfs::normalize(&out, &e.name);
        sh.with_fs(|fs| fs.put(&path, &e.data, 0o644));
        let d = sh.pace.delay();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
    io.errln(outputs::mongo_tool_log(&format!(
        "done dumping {} collections",
        entries.len() / 2
    )));
    0
}

/// `mongorestore [--drop] [--host H --port P] DIR`.
pub async fn mongorestore(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "hd", &["host", "port", "db", "dir"]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("error parsing command line options: {e}"));
            return 2;
        }
    };
    let Some(dir) = o
        .long_value("dir")
        .map(str::to_string)
        .or_else(|| o.args.first().cloned())
    else {
        io.errln(outputs::mongo_tool_log(
            "Failed: mongorestore target 'dump' invalid: stat dump: no such file or directory",
        ));
        return 1;
    };
    let base = sh.path(&dir);
    let entries: Vec<Entry> = sh.with_fs(|fs| {
        fs.walk(&base)
            .into_iter()
            .filter_map(|p| {
                let data = fs.read(&p).ok()?.to_vec();
                Some(Entry::file(
                    p[base.len()..].trim_start_matches('/').to_string(),
                    data,
                ))
            })
            .collect()
    });
    if entries.is_empty() && !sh.with_fs(|fs| fs.is_dir(&base)) {
        io.errln(outputs::mongo_tool_log(&format!(
            "Failed: mongorestore target '{dir}' invalid: stat {dir}: no such file or directory"
        )));
        return 1;
    }
    io.errln(outputs::mongo_tool_log(
        "preparing collections to restore from",
    ));
    let restored = sh.state.with(|s| restore_entries(s, &entries, ""));
    let mut total = 0;
    for (db, coll, n) in &restored {
        if o.has_long("drop") {
            io.errln(outputs::mongo_tool_log(&format!(
                "dropping collection {db}.{coll} before restoring"
            )));
        }
        io.errln(outputs::mongo_tool_log(&format!(
            "restoring {db}.{coll} from {dir}/{db}/{coll}.bson"
        )));
        io.errln(outputs::mongo_tool_log(&format!(
            "finished restoring {db}.{coll} ({n} documents, 0 failures)"
        )));
        total += n;
        let d = sh.pace.delay();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
    io.errln(outputs::mongo_tool_log(&format!(
        "{total} document(s) restored successfully. 0 document(s) failed to restore."
    )));
    0
}

/// `env_export.sh --mongo FILE`: a `.tgz` of every database's dump.
pub async fn env_export(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let usage = "Usage: env_export.sh --mongo <file.tgz>";
    let (mongo, files): (Vec<&String>, Vec<&String>) =
        args.iter().partition(|a| a.starts_with("--"));
    if !mongo.iter().any(|a| *a == "--mongo" || *a == "--all") {
        io.errln(usage);
        return 1;
    }
    let Some(file) = files.first() else {
        io.errln(usage);
        return 1;
    };
    let path = sh.path(file);
    sh.line(io, "Exporting mongo databases...").await;
    let (entries, sets) = sh.state.with(|s| {
        let sets: Vec<String> = s
            .replica_sets
            .iter()
            .map(|r| {
                format!(
                    "  {} ({}:{}): {}",
                    r.name,
                    r.members.first().map(|m| m.host.as_str()).unwrap_or(""),
                    r.port,
                    r.databases.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        (dump_entries(s, ""), sets)
    });
    for l in sets {
        sh.line(io, l).await;
    }
    let bytes = match archive::build_tar_gz(&entries) {
        Ok(b) => b,
        Err(e) => {
            io.errln(format!("env_export.sh: {e}"));
            return 1;
        }
    };
    if let Err(e) = sh.with_fs(|fs| fs.write(&path, &bytes, false)) {
        io.errln(format!("env_export.sh: cannot write {file}: {e}"));
        return 1;
    }
    sh.line(io, format!("Export file: {path} ({} bytes)", bytes.len()))
        .await;
    0
}

/// `build_set.sh --<db> --create-scripts|--create|--setup`.
pub async fn build_set(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let usage = "Usage: build_set.sh --<session|admin|spr|balance|audit|report> [--create-scripts|--create|--setup]";
    let options: Vec<&str> = args.iter().filter_map(|a| a.strip_prefix("--")).collect();
    let set = sh.state.with(|s| {
        s.replica_sets
            .iter()
            .find(|r| options.contains(&r.option.as_str()))
            .map(|r| (r.name.clone(), r.label.clone(), r.port, r.members.clone()))
    });
    let Some((name, label, port, members)) = set else {
        io.errln(usage);
        return 1;
    };
    let action = options
        .iter()
        .find(|o| matches!(**o, "create-scripts" | "create" | "setup"))
        .copied()
        .unwrap_or("create-scripts");
    sh.line(
        io,
        format!("Starting replica set {action} for {label} ({name}, port {port})"),
    )
    .await;
    for m in &members {
        sh.line(io, format!("  {}: /etc/init.d/sessionmgr-{port} and /usr/lib/systemd/system/sessionmgr-{port}.service", m.host)).await;
    }
    sh.with_fs(|fs| {
        fs.put(
            &format!("/var/qps/bin/support/mongo/{name}.scripts"),
            format!("set={name}\nport={port}\ncreated={}\n", vfs::now()),
            0o644,
        )
    });
    sh.line(io, format!("Replica set {name}: {action} finished"))
        .await;
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SiteState;

    #[test]
    fn dumps_restore_counts() {
        let state = SiteState::new();
        let entries = state.with(|s| dump_entries(s, "mongo/"));
        state.with(|s| {
            s.replica_sets[1].databases.clear();
            let restored = restore_entries(s, &entries, "mongo/");
            assert!(restored
                .iter()
                .any(|(d, c, n)| d == "balance_mgmt" && c == "account" && *n == 152340));
            assert_eq!(
                s.replica_sets[1].databases["balance_mgmt"]["account"],
                152340
            );
        });
    }
}
