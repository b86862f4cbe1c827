//! The fixed shape of the simulated site: which VMs exist, their roles and
//! internal addresses, what monit watches on each, and the mongo replica sets.
//! Everything that changes at run time lives in [`super::Site`]; this is the
//! blueprint it starts from.

/// The role of a VM, which decides what is installed on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Cluman,
    Pcrfclient,
    Sessionmgr,
    Lb,
    Qns,
    Esc,
}

/// A VM of the site: name, role, internal address.
pub struct VmSpec {
    pub name: &'static str,
    pub role: Role,
    pub ip: &'static str,
}

/// Every VM, in the order the portal and `runbook::hosts::KNOWN_HOSTS` list them.
pub const VMS: &[VmSpec] = &[
    VmSpec {
        name: "cluman",
        role: Role::Cluman,
        ip: "172.16.2.5",
    },
    VmSpec {
        name: "pcrfclient01",
        role: Role::Pcrfclient,
        ip: "172.16.2.20",
    },
    VmSpec {
        name: "pcrfclient02",
        role: Role::Pcrfclient,
        ip: "172.16.2.21",
    },
    VmSpec {
        name: "sessionmgr01",
        role: Role::Sessionmgr,
        ip: "172.16.2.11",
    },
    VmSpec {
        name: "sessionmgr02",
        role: Role::Sessionmgr,
        ip: "172.16.2.12",
    },
    VmSpec {
        name: "lb01",
        role: Role::Lb,
        ip: "172.16.2.101",
    },
    VmSpec {
        name: "lb02",
        role: Role::Lb,
        ip: "172.16.2.102",
    },
    VmSpec {
        name: "qns01",
        role: Role::Qns,
        ip: "172.16.2.31",
    },
    VmSpec {
        name: "qns02",
        role: Role::Qns,
        ip: "172.16.2.32",
    },
    VmSpec {
        name: "qns03",
        role: Role::Qns,
        ip: "172.16.2.33",
    },
    VmSpec {
        name: "qns04",
        role: Role::Qns,
        ip: "172.16.2.34",
    },
    VmSpec {
        name: "esc-master",
        role: Role::Esc,
        ip: "10.10.2.11",
    },
    VmSpec {
        name: "esc-standby",
        role: Role::Esc,
        ip: "10.10.2.12",
    },
];

/// The jump host: the only VM the portal reaches directly.
pub const JUMP_HOST: &str = "cluman";

/// The VMs of the CPS cluster proper: what `runonall.sh` and `statusall.sh` visit
/// (not the Cluster Manager, not ESC).
pub fn cluster_vms() -> impl Iterator<Item = &'static VmSpec> {
    VMS.iter()
        .filter(|v| !matches!(v.role, Role::Cluman | Role::Esc))
}

/// The spec of a VM by name.
pub fn vm(name: &str) -> Option<&'static VmSpec> {
    VMS.iter().find(|v| v.name == name)
}

/// What monit watches on a VM of this role (besides the VM itself).
pub fn monit_processes(role: Role) -> &'static [&'static str] {
    match role {
        Role::Cluman => &["snmpd", "collectd"],
        Role::Pcrfclient => &[
            "snmpd",
            "collectd",
            "logstash",
            "carbon-cache",
            "grafana",
            "httpd",
            "qns-1",
        ],
        Role::Sessionmgr => &["snmpd", "collectd", "memcached"],
        Role::Lb => &[
            "snmpd",
            "collectd",
            "corosync",
            "haproxy",
            "haproxy-diameter",
            "memcached",
            "qns-1",
            "qns-2",
            "qns-3",
            "qns-4",
        ],
        Role::Qns => &["snmpd", "collectd", "qns-1"],
        Role::Esc => &[],
    }
}

/// Member of a replica set, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    Primary,
    Secondary,
    Arbiter,
}

/// A replica set as `/etc/broadhop/mongoConfig.cfg` describes it.
pub struct SetSpec {
    /// `set01` ...
    pub name: &'static str,
    /// The section name in mongoConfig.cfg, such as `SESSION`.
    pub label: &'static str,
    /// The `build_set.sh --<db>` option that builds it.
    pub option: &'static str,
    pub port: u16,
    /// Databases with their collections and document counts.
    pub databases: &'static [(&'static str, &'static [(&'static str, u64)])],
}

/// Members of every set: two session managers and the arbiter on pcrfclient01.
pub const MEMBERS: &[(&str, MemberRole, u8)] = &[
    ("sessionmgr01", MemberRole::Primary, 3),
    ("sessionmgr02", MemberRole::Secondary, 2),
    ("pcrfclient01", MemberRole::Arbiter, 0),
];

/// The replica sets of the site.
pub const SETS: &[SetSpec] = &[
    SetSpec {
        name: "set01",
        label: "SESSION",
        option: "session",
        port: 27717,
        databases: &[(
            "session_cache",
            &[("session", 48211), ("secondary_key", 96422)],
        )],
    },
    SetSpec {
        name: "set02",
        label: "BALANCE",
        option: "balance",
        port: 27718,
        databases: &[(
            "balance_mgmt",
            &[
                ("account", 152340),
                ("reservation", 2210),
                ("counter_sync", 87),
            ],
        )],
    },
    SetSpec {
        name: "set03",
        label: "REPORTING",
        option: "report",
        port: 27719,
        databases: &[("reporting", &[("bulk_stat", 30211), ("event", 120443)])],
    },
    SetSpec {
        name: "set04",
        label: "SPR",
        option: "spr",
        port: 27720,
        databases: &[("spr", &[("subscriber", 98233), ("avp", 196466)])],
    },
    SetSpec {
        name: "set05",
        label: "ADMIN",
        option: "admin",
        port: 27721,
        databases: &[
            ("cust_ref_data", &[("lookup", 412)]),
            ("scheduler", &[("jobs", 12)]),
            ("sharding", &[("shards", 4), ("instances", 16)]),
        ],
    },
    SetSpec {
        name: "set06",
        label: "AUDIT",
        option: "audit",
        port: 27725,
        databases: &[("audit", &[("audit", 5532)])],
    },
];

/// The installed CPS release.
pub const CPS_VERSION: &str = "18.2.0";

/// The patch installed on the site: its directory under `/var/qps/patches`, as
/// listed in `/etc/broadhop/repositories`. Runbook 3 names it as `component`.
pub const PATCH_COMPONENT: &str = "cps-patch-18.2.0.1";

/// Where patches are unpacked.
pub const PATCH_DIR: &str = "/var/qps/patches";
