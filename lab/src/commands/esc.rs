//! The Elastic Services Controller VMs: `health.sh`, `escadm` (a restart of
//! the master switches the pair over), `esc_nc_cli vm-action`, and
//! `netconf-console --get-config`.

use crate::outputs;
use crate::shell::{Io, Shell};
use crate::state::initial::esc_log_line;
use crate::state::vfs;
use crate::state::PowerAction;

/// ESC's notification log on the ESC VMs.
pub const YANG_LOG: &str = "/var/log/esc/yangesc.log";

fn other_esc(name: &str) -> &'static str {
    if name == "esc-master" {
        "esc-standby"
    } else {
        "esc-master"
    }
}

/// `health.sh`.
pub async fn health(sh: &Shell, io: &Io) -> i32 {
    let host = sh.host.clone();
    let (is_master, healthy) = sh.state.with(|s| {
        (
            s.esc.master == host,
            s.host(&host)
                .and_then(|h| h.units.get("esc_service").copied())
                .unwrap_or(false),
        )
    });
    for l in outputs::esc_health(is_master, healthy) {
        sh.line(io, l).await;
    }
    i32::from(!healthy)
}

/// Appends the notifications ESC logs when it (re)learns the VMs' states.
fn log_vm_states(sh: &Shell, host: &str) {
    sh.state.with(|s| {
        let now = vfs::now();
        let lines: String = s
            .esc
            .vm_states
            .iter()
            .flat_map(|(vm, state)| {
                let mut v = vec![esc_log_line(now, "VM_ALIVE", state, vm)];
                if state == "VM_ALIVE_STATE" {
                    v.push(esc_log_line(
                        now,
                        "SERVICE_ALIVE",
                        "SERVICE_ALIVE_STATE",
                        vm,
                    ));
                }
                v
            })
            .collect();
        if let Some(h) = s.host_mut(host) {
            let _ = h.fs.write(YANG_LOG, lines.as_bytes(), true);
        }
    });
}

/// `escadm restart|stop|start|status`.
pub async fn escadm(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let host = sh.host.clone();
    let is_master = sh.state.with(|s| s.esc.master == host);
    match args.first().map(String::as_str) {
        Some("restart") => {
            sh.line(io, "Stopping ESC services...").await;
            if is_master {
                let new_master = other_esc(&host);
                sh.state.with(|s| s.esc.master = new_master.to_string());
                sh.line(io, format!("ESC HA switchover: {new_master} is now MASTER"))
                    .await;
                log_vm_states(sh, new_master);
            }
            sh.line(io, "Starting ESC services...").await;
            sh.state.with(|s| {
                if let Some(h) = s.host_mut(&host) {
                    h.units.insert("esc_service".into(), true);
                }
            });
            sh.line(
                io,
                format!(
                    "ESC started on {host} as {}",
                    if is_master {
                        "BACKUP"
                    } else {
                        "BACKUP (unchanged)"
                    }
                ),
            )
            .await;
            0
        }
        Some(action @ ("stop" | "start")) => {
            let on = action == "start";
            sh.state.with(|s| {
                if let Some(h) = s.host_mut(&host) {
                    h.units.insert("esc_service".into(), on);
                }
                if !on && s.esc.master == host {
                    s.esc.master = other_esc(&host).to_string();
                }
            });
            sh.line(
                io,
                format!("ESC {}", if on { "started" } else { "stopped" }),
            )
            .await;
            0
        }
        Some("status") => {
            let running = sh.state.with(|s| {
                s.host(&host)
                    .and_then(|h| h.units.get("esc_service").copied())
                    .unwrap_or(false)
            });
            io.outln(format!(
                "0 ESC status=0 ESC {} {}",
                if is_master { "Master" } else { "Backup" },
                if running { "Healthy" } else { "Stopped" }
            ));
            0
        }
        _ => {
            io.errln("Usage: escadm {start|stop|restart|status}");
            1
        }
    }
}

/// `esc_nc_cli vm-action START|STOP|REBOOT VM`. ESC asks the cloud to power the
/// VM, as the real ESC asks its VIM: the lab's Nova server passes through its
/// task states and the VM's SSH follows; a refusal (the server is busy or
/// already in that state) is ESC's error reply.
pub async fn esc_nc_cli(sh: &Shell, args: &[String], io: &Io) -> i32 {
    match args {
        [cmd, action, vm, ..] if cmd == "vm-action" => {
            let (state, power) = match action.to_ascii_uppercase().as_str() {
                "STOP" => ("VM_SHUTOFF_STATE", PowerAction::Stop),
                "START" => ("VM_ALIVE_STATE", PowerAction::Start),
                "REBOOT" => ("VM_ALIVE_STATE", PowerAction::Reboot),
                _ => {
                    for l in outputs::netconf_error(&format!("unknown vm-action {action}")) {
                        io.outln(l);
                    }
                    return 1;
                }
            };
            let master = sh.state.with(|s| s.esc.master.clone());
            if !sh.state.with(|s| s.esc.vm_states.contains_key(vm.as_str())) {
                for l in outputs::netconf_error(&format!("VM {vm} is not found in any deployment"))
                {
                    io.outln(l);
                }
                return 1;
            }
            if let Some(Err(why)) = sh.state.request_power(vm, power) {
                for l in outputs::netconf_error(&why) {
                    io.outln(l);
                }
                return 1;
            }
            let known = sh.state.with(|s| {
                if let Some(v) = s.esc.vm_states.get_mut(vm.as_str()) {
                    *v = state.to_string();
                    true
                } else {
                    false
                }
            });
            if !known {
                for l in outputs::netconf_error(&format!("VM {vm} is not found in any deployment"))
                {
                    io.outln(l);
                }
                return 1;
            }
            sh.state.with(|s| {
                let line = esc_log_line(
                    vfs::now(),
                    &format!("VM_{}", action.to_ascii_uppercase()),
                    state,
                    vm,
                );
                if let Some(h) = s.host_mut(&master) {
                    let _ = h.fs.write(YANG_LOG, line.as_bytes(), true);
                }
            });
            for l in outputs::netconf_ok() {
                sh.line(io, l).await;
            }
            0
        }
        _ => {
            io.errln("Usage: esc_nc_cli vm-action <START|STOP|REBOOT> <vm-name>");
            1
        }
    }
}

/// `netconf-console --host H --port P [-u U -p P] --get-config`.
pub fn netconf_console(sh: &Shell, args: &[String], io: &Io) -> i32 {
    if !args.iter().any(|a| a == "--get-config") {
        io.errln("netconf-console: the lab answers --get-config only");
        return 1;
    }
    for l in sh.state.with(|s| outputs::esc_config(s)) {
        io.outln(l);
    }
    0
}
