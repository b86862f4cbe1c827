//! File utilities over the VM's filesystem: `cat`, `ls`, `cp`, `mv`, `rm`,
//! `mkdir`, `touch`, `chmod`, `tar`, `find`, `sha256sum`, `stat`, `basename`,
//! `dirname`. Messages follow GNU coreutils.

use super::{getopt, read_file};
use crate::archive::{self, Entry};
use crate::shell::{Io, Shell};
use crate::state::vfs::{self, FsError, Node};
use sha2::{Digest, Sha256};

fn bad_option(tool: &str, e: &str, io: &Io) -> i32 {
    io.errln(format!("{tool}: {e}"));
    io.errln(format!("Try '{tool} --help' for more information."));
    if tool == "ls" || tool == "tar" {
        2
    } else {
        1
    }
}

pub fn cat(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let files: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') || *a == "-")
        .collect();
    if files.is_empty() {
        io.out.write(&io.stdin);
        return 0;
    }
    let mut status = 0;
    for f in files {
        if f == "-" {
            io.out.write(&io.stdin);
            continue;
        }
        match read_file(sh, "cat", f, io) {
            Some(data) => io.out.write(&data),
            None => status = 1,
        }
    }
    status
}

/// `drwxr-xr-x` and friends.
pub fn mode_string(node: &Node) -> String {
    let mode = node.mode();
    let mut s = String::from(if node.is_dir() { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn human(size: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if size < 1024 {
        return size.to_string();
    }
    let mut v = size as f64;
    let mut unit = "";
    for u in UNITS {
        v /= 1024.0;
        unit = u;
        if v < 1024.0 {
            break;
        }
    }
    if v < 10.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

fn long_line(name: &str, node: &Node, human_sizes: bool) -> String {
    let when = chrono::DateTime::from_timestamp(node.mtime(), 0)
        .unwrap_or_default()
        .format("%b %e %H:%M");
    let size = if human_sizes {
        human(node.size())
    } else {
        node.size().to_string()
    };
    format!(
        "{} {} root root {:>8} {} {}",
        mode_string(node),
        if node.is_dir() { 2 } else { 1 },
        size,
        when,
        name
    )
}

pub fn ls(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "", &[]) {
        Ok(o) => o,
        Err(e) => return bad_option("ls", &e, io),
    };
    let long = o.has('l');
    let all = o.has('a') || o.has('A');
    let dir_itself = o.has('d');
    let human_sizes = o.has('h');
    let by_time = o.has('t');
    let reverse = o.has('r');
    let targets: Vec<String> = if o.args.is_empty() {
        vec![".".to_string()]
    } else {
        o.args.clone()
    };
    let mut status = 0;
    let mut files: Vec<(String, Node)> = Vec::new();
    let mut dirs: Vec<(String, Vec<(String, Node)>)> = Vec::new();
    for t in &targets {
        let path = sh.path(t);
        let found = sh.with_fs(|fs| {
            let node = fs.get(&path).cloned();
            match node {
                Some(n) if n.is_dir() && !dir_itself => Some((n, fs.list(&path).ok())),
                Some(n) => Some((n, None)),
                None => None,
            }
        });
        match found {
            None => {
                io.errln(format!(
                    "ls: cannot access '{t}': No such file or directory"
                ));
                status = 2;
            }
            Some((_, Some(children))) => dirs.push((t.clone(), children)),
            Some((n, None)) => files.push((t.clone(), n)),
        }
    }
    let order = |entries: &mut Vec<(String, Node)>| {
        if by_time {
            entries.sort_by(|a, b| b.1.mtime().cmp(&a.1.mtime()).then(a.0.cmp(&b.0)));
        }
        if reverse {
            entries.reverse();
        }
    };
    order(&mut files);
    for (name, node) in &files {
        if long {
            io.outln(long_line(name, node, human_sizes));
        } else {
            io.outln(name);
        }
    }
    let headers = dirs.len() + files.len() > 1;
    for (i, (name, mut children)) in dirs.into_iter().enumerate() {
        if headers {
            if i > 0 || !files.is_empty() {
                io.outln("");
            }
            io.outln(format!("{name}:"));
        }
        children.retain(|(n, _)| all || !n.starts_with('.'));
        order(&mut children);
        if long {
            let blocks: u64 = children.iter().map(|(_, n)| n.size().div_ceil(1024)).sum();
            io.outln(format!("total {blocks}"));
        }
        for (n, node) in &children {
            if long {
                io.outln(long_line(n, node, human_sizes));
            } else {
                io.outln(n);
            }
        }
    }
    status
}

/// Where `src` goes when copied or moved to `dest`.
fn destination(sh: &Shell, src: &str, dest: &str, many: bool) -> Result<String, String> {
    let d = sh.path(dest);
    let is_dir = sh.with_fs(|fs| fs.is_dir(&d));
    if is_dir {
        Ok(vfs::normalize(&d, vfs::basename(&sh.path(src))))
    } else if many {
        Err(format!("target '{dest}' is not a directory"))
    } else {
        Ok(d)
    }
}

pub fn cp(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "", &[]) {
        Ok(o) => o,
        Err(e) => return bad_option("cp", &e, io),
    };
    let recursive = o.has('r') || o.has('R') || o.has('a');
    if o.args.len() < 2 {
        io.errln(match o.args.first() {
            None => "cp: missing file operand".to_string(),
            Some(a) => format!("cp: missing destination file operand after '{a}'"),
        });
        return 1;
    }
    let (dest, sources) = o
        .args
        .split_last()
        .map(|(d, s)| (d.clone(), s.to_vec()))
        .unwrap_or_default();
    let mut status = 0;
    for src in &sources {
        let to = match destination(sh, src, &dest, sources.len() > 1) {
            Ok(t) => t,
            Err(e) => {
                io.errln(format!("cp: {e}"));
                return 1;
            }
        };
        let from = sh.path(src);
        let result = sh.with_fs(|fs| match fs.get(&from) {
            None => Err(format!("cannot stat '{src}': No such file or directory")),
            Some(n) if n.is_dir() && !recursive => {
                Err(format!("-r not specified; omitting directory '{src}'"))
            }
            Some(_) => fs
                .copy(&from, &to, recursive)
                .map_err(|e| format!("cannot create regular file '{dest}': {e}")),
        });
        if let Err(e) = result {
            io.errln(format!("cp: {e}"));
            status = 1;
        } else if o.has('v') {
            io.outln(format!("'{src}' -> '{to}'"));
        }
    }
    status
}

pub fn mv(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "", &[]) {
        Ok(o) => o,
        Err(e) => return bad_option("mv", &e, io),
    };
    if o.args.len() < 2 {
        io.errln("mv: missing file operand");
        return 1;
    }
    let (dest, sources) = o
        .args
        .split_last()
        .map(|(d, s)| (d.clone(), s.to_vec()))
        .unwrap_or_default();
    let mut status = 0;
    for src in &sources {
        let to = match destination(sh, src, &dest, sources.len() > 1) {
            Ok(t) => t,
            Err(e) => {
                io.errln(format!("mv: {e}"));
                return 1;
            }
        };
        let from = sh.path(src);
        if let Err(e) = sh.with_fs(|fs| fs.rename(&from, &to)) {
            io.errln(format!("mv: cannot move '{src}' to '{dest}': {e}"));
            status = 1;
        }
    }
    status
}

pub fn rm(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "", &[]) {
        Ok(o) => o,
        Err(e) => return bad_option("rm", &e, io),
    };
    let force = o.has('f');
    let recursive = o.has('r') || o.has('R');
    if o.args.is_empty() && !force {
        io.errln("rm: missing operand");
        return 1;
    }
    let mut status = 0;
    for a in &o.args {
        let p = sh.path(a);
        if p == "/" {
            io.errln("rm: it is dangerous to operate recursively on '/'");
            status = 1;
            continue;
        }
        match sh.with_fs(|fs| fs.remove(&p, recursive)) {
            Ok(()) => {}
            Err(FsError::NotFound) if force => {}
            Err(e) => {
                io.errln(format!("rm: cannot remove '{a}': {e}"));
                status = 1;
            }
        }
    }
    status
}

pub fn rmdir(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let mut status = 0;
    for a in args.iter().filter(|a| !a.starts_with('-')) {
        let p = sh.path(a);
        if let Err(e) = sh.with_fs(|fs| fs.rmdir(&p)) {
            io.errln(format!("rmdir: failed to remove '{a}': {e}"));
            status = 1;
        }
    }
    status
}

pub fn mkdir(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "m", &["mode"]) {
        Ok(o) => o,
        Err(e) => return bad_option("mkdir", &e, io),
    };
    if o.args.is_empty() {
        io.errln("mkdir: missing operand");
        return 1;
    }
    let mut status = 0;
    for a in &o.args {
        let p = sh.path(a);
        if let Err(e) = sh.with_fs(|fs| fs.mkdir(&p, o.has('p'))) {
            io.errln(format!("mkdir: cannot create directory '{a}': {e}"));
            status = 1;
        }
    }
    status
}

pub fn touch(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let mut status = 0;
    for a in args.iter().filter(|a| !a.starts_with('-')) {
        let p = sh.path(a);
        let r = sh.with_fs(|fs| {
            if fs.get(&p).is_some() {
                fs.set_mtime(&p, vfs::now())
            } else {
                fs.write(&p, b"", true)
            }
        });
        if let Err(e) = r {
            io.errln(format!("touch: cannot touch '{a}': {e}"));
            status = 1;
        }
    }
    status
}

fn apply_mode(old: u32, spec: &str) -> Option<u32> {
    if let Ok(n) = u32::from_str_radix(spec, 8) {
        return Some(n);
    }
    let mut mode = old;
    for clause in spec.split(',') {
        let op_at = clause.find(['+', '-', '='])?;
        let (who, rest) = clause.split_at(op_at);
        let op = rest.chars().next()?;
        let mut bits = 0;
        for c in rest[1..].chars() {
            bits |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                _ => return None,
            };
        }
        let mut mask = 0;
        for c in if who.is_empty() {
            "a".chars()
        } else {
            who.chars()
        } {
            mask |= match c {
                'u' => 0o700,
                'g' => 0o070,
                'o' => 0o007,
                'a' => 0o777,
                _ => return None,
            };
        }
        match op {
            '+' => mode |= bits & mask,
            '-' => mode &= !(bits & mask),
            _ => mode = (mode & !mask) | (bits & mask),
        }
    }
    Some(mode)
}

pub fn chmod(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let ops: Vec<&String> = args.iter().filter(|a| !a.starts_with("-R")).collect();
    let Some((spec, files)) = ops.split_first() else {
        io.errln("chmod: missing operand");
        return 1;
    };
    let mut status = 0;
    for f in files {
        let p = sh.path(f);
        let r = sh.with_fs(|fs| {
            let old = fs.get(&p).map(Node::mode).ok_or(FsError::NotFound)?;
            let new = apply_mode(old, spec).ok_or(FsError::Invalid)?;
            fs.chmod(&p, new)
        });
        match r {
            Ok(()) => {}
            Err(FsError::Invalid) => {
                io.errln(format!("chmod: invalid mode: '{spec}'"));
                return 1;
            }
            Err(e) => {
                io.errln(format!("chmod: cannot access '{f}': {e}"));
                status = 1;
            }
        }
    }
    status
}

/// `tar -c|-x|-t [-z] [-v] -f ARCHIVE [-C DIR] [PATH...]` with real archives.
pub fn tar(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let mut args = args.to_vec();
    // Old style: `tar czf x.tgz dir`.
    if let Some(first) = args.first_mut() {
        if !first.starts_with('-') {
            first.insert(0, '-');
        }
    }
    let o = match getopt(&args, "fC", &["file", "directory"]) {
        Ok(o) => o,
        Err(e) => return bad_option("tar", &e, io),
    };
    let verbose = o.has('v');
    let Some(file) = o.value('f').or(o.long_value("file")).map(str::to_string) else {
        io.errln("tar: Refusing to read archive contents from terminal (missing -f option?)");
        io.errln("tar: Error is not recoverable: exiting now");
        return 2;
    };
    let base = match o.value('C').or(o.long_value("directory")) {
        Some(d) => sh.path(d),
        None => sh.cwd.clone(),
    };
    if !sh.with_fs(|fs| fs.is_dir(&base)) {
        io.errln(format!(
            "tar: {base}: Cannot open: No such file or directory"
        ));
        io.errln("tar: Error is not recoverable: exiting now");
        return 2;
    }
    let archive_path = sh.path(&file);
    if o.has('c') || o.has_long("create") {
        if o.args.is_empty() {
            io.errln("tar: Cowardly refusing to create an empty archive");
            return 2;
        }
        let mut entries = Vec::new();
        let mut missing = false;
        let mut stripped = false;
        for a in &o.args {
            let path = vfs::normalize(&base, a);
            let shown_root = if a.starts_with('/') {
                stripped = true;
                path.trim_start_matches('/').to_string()
            } else {
                vfs::normalize("/", a).trim_start_matches('/').to_string()
            };
            let found = sh.with_fs(|fs| {
                fs.walk(&path)
                    .into_iter()
                    .filter_map(|p| fs.get(&p).map(|n| (p, n.clone())))
                    .collect::<Vec<_>>()
            });
            if found.is_empty() {
                io.errln(format!("tar: {a}: Cannot stat: No such file or directory"));
                missing = true;
                continue;
            }
            for (p, node) in found {
                let name = format!("{shown_root}{}", &p[path.len()..]);
                let name = name.trim_start_matches('/').to_string();
                if name.is_empty() {
                    continue;
                }
                if verbose {
                    io.outln(if node.is_dir() {
                        format!("{name}/")
                    } else {
                        name.clone()
                    });
                }
                entries.push(match node {
                    Node::File { data, mode, mtime } => Entry {
                        name,
                        data,
                        mode,
                        mtime,
                        is_dir: false,
                    },
                    Node::Dir { mode, mtime } => Entry {
                        name,
                        data: Vec::new(),
                        mode,
                        mtime,
                        is_dir: true,
                    },
                });
            }
        }
        if stripped {
            io.errln("tar: Removing leading `/' from member names");
        }
        let bytes = match archive::build_tar_gz(&entries) {
            Ok(b) => b,
            Err(e) => {
                io.errln(format!("tar: {e}"));
                return 2;
            }
        };
        if let Err(e) = sh.with_fs(|fs| fs.write(&archive_path, &bytes, false)) {
            io.errln(format!("tar: {file}: Cannot open: {e}"));
            io.errln("tar: Error is not recoverable: exiting now");
            return 2;
        }
        if missing {
            io.errln("tar: Exiting with failure status due to previous errors");
            return 2;
        }
        return 0;
    }
    let extract = o.has('x') || o.has_long("extract");
    let list = o.has('t') || o.has_long("list");
    if !extract && !list {
        io.errln(
            "tar: You must specify one of the '-Acdtrux', '--delete' or '--test-label' options",
        );
        return 2;
    }
    let bytes = if file == "-" {
        io.stdin.to_vec()
    } else {
        match sh.with_fs(|fs| fs.read(&archive_path).map(<[u8]>::to_vec)) {
            Ok(b) => b,
            Err(e) => {
                io.errln(format!("tar: {file}: Cannot open: {e}"));
                io.errln("tar: Error is not recoverable: exiting now");
                return 2;
            }
        }
    };
    let entries = match archive::read_tar(&bytes) {
        Ok(e) => e,
        Err(_) => {
            if o.has('z') {
                io.errln("gzip: stdin: not in gzip format");
                io.errln("tar: Child returned status 1");
            } else {
                io.errln("tar: This does not look like a tar archive");
            }
            io.errln("tar: Error is not recoverable: exiting now");
            return 2;
        }
    };
    for e in entries {
        let shown = if e.is_dir {
            format!("{}/", e.name)
        } else {
            e.name.clone()
        };
        if list {
            if verbose {
                let node = if e.is_dir {
                    Node::Dir {
                        mode: e.mode,
                        mtime: e.mtime,
                    }
                } else {
                    Node::File {
                        data: Vec::new(),
                        mode: e.mode,
                        mtime: e.mtime,
                    }
                };
                let when = chrono::DateTime::from_timestamp(e.mtime, 0)
                    .unwrap_or_default()
                    .format("%Y-%m-%d %H:%M");
                io.outln(format!(
                    "{} root/root {:>9} {when} {shown}",
                    mode_string(&node),
                    e.data.len()
                ));
            } else {
                io.outln(shown);
            }
            continue;
        }
        let target = vfs::normalize(&base, &e.name);
        let r = sh.with_fs(|fs| {
            if e.is_dir {
                fs.mkdir(&target, true)
            } else {
                fs.mkdir(vfs::parent(&target), true)?;
                fs.write(&target, &e.data, false)?;
                fs.chmod(&target, e.mode)?;
                fs.set_mtime(&target, e.mtime)
            }
        });
        if let Err(err) = r {
            io.errln(format!("tar: {}: Cannot open: {err}", e.name));
            continue;
        }
        if verbose {
            io.outln(shown);
        }
    }
    0
}

/// `find PATH... [-name PAT] [-type f|d] [-maxdepth N] [-mtime ±N] [-delete]`.
pub fn find(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let split = args
        .iter()
        .position(|a| a.starts_with('-'))
        .unwrap_or(args.len());
    let roots: Vec<String> = if split == 0 {
        vec![".".to_string()]
    } else {
        args[..split].to_vec()
    };
    let mut name: Option<String> = None;
    let mut kind: Option<String> = None;
    let mut maxdepth: Option<usize> = None;
    let mut mtime: Option<String> = None;
    let mut delete = false;
    let mut i = split;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match args[i].as_str() {
            "-name" => name = value,
            "-type" => kind = value,
            "-maxdepth" => maxdepth = value.and_then(|v| v.parse().ok()),
            "-mtime" => mtime = value,
            "-delete" => {
                delete = true;
                i += 1;
                continue;
            }
            "-print" => {
                i += 1;
                continue;
            }
            other => {
                io.errln(format!("find: unknown predicate `{other}'"));
                return 1;
            }
        }
        i += 2;
    }
    let mut status = 0;
    for root in roots {
        let base = sh.path(&root);
        let all = sh.with_fs(|fs| {
            fs.walk(&base)
                .into_iter()
                .filter_map(|p| fs.get(&p).map(|n| (p, n.clone())))
                .collect::<Vec<_>>()
        });
        if all.is_empty() {
            io.errln(format!("find: '{root}': No such file or directory"));
            status = 1;
            continue;
        }
        let mut hits = Vec::new();
        for (p, node) in all {
            let rel = if base == "/" {
                p.as_str()
            } else {
                &p[base.len()..]
            };
            let depth = rel.matches('/').count();
            if maxdepth.is_some_and(|m| depth > m) {
                continue;
            }
            if let Some(pat) = &name {
                let pattern: Vec<(char, bool)> = pat.chars().map(|c| (c, false)).collect();
                if !crate::shell::glob_match(&pattern, vfs::basename(&p)) {
                    continue;
                }
            }
            match kind.as_deref() {
                Some("f") if node.is_dir() => continue,
                Some("d") if !node.is_dir() => continue,
                _ => {}
            }
            if let Some(m) = &mtime {
                let age = (vfs::now() - node.mtime()) / 86400;
                let ok = match (m.strip_prefix('+'), m.strip_prefix('-')) {
                    (Some(n), _) => n.parse::<i64>().is_ok_and(|n| age > n),
                    (_, Some(n)) => n.parse::<i64>().is_ok_and(|n| age < n),
                    _ => m.parse::<i64>().is_ok_and(|n| age == n),
                };
                if !ok {
                    continue;
                }
            }
            let shown = format!("{}{}", root.trim_end_matches('/'), rel);
            hits.push((
                p,
                if shown.is_empty() {
                    "/".to_string()
                } else {
                    shown
                },
            ));
        }
        if delete {
            // Children before their directories, as find -delete does.
            for (p, _) in hits.into_iter().rev() {
                let _ = sh.with_fs(|fs| {
                    if fs.is_dir(&p) {
                        fs.rmdir(&p)
                    } else {
                        fs.remove(&p, false)
                    }
                });
            }
        } else {
            for (_, shown) in hits {
                io.outln(shown);
            }
        }
    }
    status
}

pub fn sha256sum(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let files: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if files.is_empty() {
        io.outln(format!(
            "{}  -",
            hex::encode(Sha256::digest(io.stdin.as_slice()))
        ));
        return 0;
    }
    let mut status = 0;
    for f in files {
        match read_file(sh, "sha256sum", f, io) {
            Some(d) => io.outln(format!("{}  {f}", hex::encode(Sha256::digest(&d)))),
            None => status = 1,
        }
    }
    status
}

pub fn stat(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let mut status = 0;
    for f in args.iter().filter(|a| !a.starts_with('-')) {
        let p = sh.path(f);
        match sh.with_fs(|fs| fs.get(&p).cloned()) {
            Some(n) => {
                let when = chrono::DateTime::from_timestamp(n.mtime(), 0)
                    .unwrap_or_default()
                    .format("%Y-%m-%d %H:%M:%S.000000000 +0000");
                io.outln(format!("  File: {f}"));
                io.outln(format!(
                    "  Size: {:<15} Blocks: {:<10} IO Block: 4096   {}",
                    n.size(),
                    n.size().div_ceil(512),
                    if n.is_dir() {
                        "directory"
                    } else {
                        "regular file"
                    }
                ));
                io.outln(format!(
                    "Access: (0{:o}/{})  Uid: (    0/    root)   Gid: (    0/    root)",
                    n.mode(),
                    mode_string(&n)
                ));
                io.outln(format!("Modify: {when}"));
            }
            None => {
                io.errln(format!(
                    "stat: cannot stat '{f}': No such file or directory"
                ));
                status = 1;
            }
        }
    }
    status
}

pub fn basename_cmd(args: &[String], io: &Io) -> i32 {
    let Some(p) = args.first() else {
        io.errln("basename: missing operand");
        return 1;
    };
    let mut b = vfs::basename(p.trim_end_matches('/')).to_string();
    if let Some(suffix) = args.get(1) {
        if b.len() > suffix.len() {
            if let Some(s) = b.strip_suffix(suffix.as_str()) {
                b = s.to_string();
            }
        }
    }
    io.outln(b);
    0
}

pub fn dirname_cmd(args: &[String], io: &Io) -> i32 {
    let Some(p) = args.first() else {
        io.errln("dirname: missing operand");
        return 1;
    };
    let p = p.trim_end_matches('/');
    io.outln(match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => ".",
    });
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(apply_mode(0o644, "755"), Some(0o755));
        assert_eq!(apply_mode(0o644, "+x"), Some(0o755));
        assert_eq!(apply_mode(0o755, "go-x"), Some(0o744));
        assert_eq!(apply_mode(0o644, "u=rwx"), Some(0o744));
        assert_eq!(apply_mode(0o644, "z+q"), None);
        assert_eq!(human(5 * 1024 * 1024), "5.0M");
    }
}
