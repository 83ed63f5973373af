//! Scripting: EVAL/EVALSHA(_RO), SCRIPT, FUNCTION, FCALL(_RO). The Lua side is in `lua/`.

use super::server::cmd;
use super::*;
use crate::lua::{Invocation, Scripting};

const MOVABLE: Keys = Keys::NumKeys(2);

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "eval",
        -3,
        "noscript stale skip_monitor may_replicate no_mandatory_keys movablekeys",
        "@slow @scripting",
        MOVABLE,
        eval
    ),
    cmd!(
        "evalsha",
        -3,
        "noscript stale skip_monitor may_replicate no_mandatory_keys movablekeys",
        "@slow @scripting",
        MOVABLE,
        evalsha
    ),
    cmd!(
        "eval_ro",
        -3,
        "readonly noscript stale skip_monitor no_mandatory_keys movablekeys",
        "@slow @scripting",
        MOVABLE,
        eval_ro
    ),
    cmd!(
        "evalsha_ro",
        -3,
        "readonly noscript stale skip_monitor no_mandatory_keys movablekeys",
        "@slow @scripting",
        MOVABLE,
        evalsha_ro
    ),
    cmd!(
        "fcall",
        -3,
        "noscript stale skip_monitor may_replicate no_mandatory_keys movablekeys",
        "@slow @scripting",
        MOVABLE,
        fcall
    ),
    cmd!(
        "fcall_ro",
        -3,
        "readonly noscript stale skip_monitor no_mandatory_keys movablekeys",
        "@slow @scripting",
        MOVABLE,
        fcall_ro
    ),
    cmd!(
        "script",
        -2,
        "noscript",
        "@slow @scripting",
        Keys::None,
        script
    ),
    cmd!(
        "function",
        -2,
        "noscript",
        "@slow @scripting",
        Keys::None,
        function
    ),
];

/// Take the node's scripting state (created on first use); put it back with `restore`.
fn take(node: &mut Node) -> Result<Box<Scripting>, Error> {
    match node.scripting.take() {
        Some(s) => Ok(s),
        None => Scripting::new()
            .map(Box::new)
            .map_err(|e| err(format!("Lua engine unavailable: {e}"))),
    }
}

/// numkeys, keys and args of EVAL/FCALL.
/// The keys and the arguments: views of the command line (nothing copied).
fn keys_args<'a>(ctx: &Ctx<'a>, fcall: bool) -> Result<(Args<'a>, Args<'a>), Error> {
    let n = match ctx.int(2) {
        Ok(n) => n,
        Err(_) if fcall => return Err(err("Bad number of keys provided")),
        Err(e) => return Err(e),
    };
    if n < 0 {
        return Err(err("Number of keys can't be negative"));
    }
    let n = n as usize;
    if n > ctx.argc() - 3 {
        return Err(err("Number of keys can't be greater than number of args"));
    }
    let (buf, ranges) = (ctx.args.buf, ctx.args.ranges);
    let (Some(keys), Some(args)) = (ranges.get(3..3 + n), ranges.get(3 + n..)) else {
        return Err(err("Number of keys can't be greater than number of args"));
    };
    Ok((Args { buf, ranges: keys }, Args { buf, ranges: args }))
}

fn eval_generic(ctx: &mut Ctx<'_>, by_sha: bool, ro: bool) -> CmdResult {
    let (keys, args) = keys_args(ctx, false)?;
    let mut sc = take(ctx.node)?;
    let res = (|| {
        let sha = if by_sha {
            // A sha is hex: bytes that are not UTF-8 name no cached script (run_script
            // answers NOSCRIPT for unknown ones).
            match std::str::from_utf8(ctx.arg(1)) {
                Ok(s) => s.to_ascii_lowercase(),
                Err(_) => {
                    return Err(Error::Raw(
                        "NOSCRIPT No matching script. Please use EVAL.".into(),
                    ))
                }
            }
        } else {
            sc.load_script(ctx.arg(1)).map_err(Error::Raw)?
        };
        let inv = Invocation {
            keys,
            args,
            funcname: sha.clone(),
            ro_command: ro,
            // Only FUNCTION STATS shows the command line, and only for functions.
            command: Vec::new(),
        };
        sc.run_script(ctx.node, ctx.client, &sha, inv, ctx.out)
    })();
    ctx.node.scripting = Some(sc);
    res
}

fn eval(ctx: &mut Ctx<'_>) -> CmdResult {
    eval_generic(ctx, false, false)
}
fn evalsha(ctx: &mut Ctx<'_>) -> CmdResult {
    eval_generic(ctx, true, false)
}
fn eval_ro(ctx: &mut Ctx<'_>) -> CmdResult {
    eval_generic(ctx, false, true)
}
fn evalsha_ro(ctx: &mut Ctx<'_>) -> CmdResult {
    eval_generic(ctx, true, true)
}

fn fcall_generic(ctx: &mut Ctx<'_>, ro: bool) -> CmdResult {
    let (keys, args) = keys_args(ctx, true)?;
    let name = String::from_utf8_lossy(ctx.arg(1)).into_owned();
    let mut sc = take(ctx.node)?;
    let inv = Invocation {
        keys,
        args,
        funcname: name.clone(),
        ro_command: ro,
        command: ctx.args.iter().map(|a| a.to_vec()).collect(),
    };
    let res = sc.run_function(ctx.node, ctx.client, &name, inv, ctx.out);
    ctx.node.scripting = Some(sc);
    res
}

fn fcall(ctx: &mut Ctx<'_>) -> CmdResult {
    fcall_generic(ctx, false)
}
fn fcall_ro(ctx: &mut Ctx<'_>) -> CmdResult {
    fcall_generic(ctx, true)
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

fn flush_mode_ok(ctx: &Ctx<'_>) -> bool {
    ctx.argc() == 2 || (ctx.argc() == 3 && (ctx.arg_eq(2, "sync") || ctx.arg_eq(2, "async")))
}

fn script(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    match (sub.as_str(), ctx.argc()) {
        ("help", 2) => {
            let mut lines = SCRIPT_HELP.to_vec();
            if ctx.node.settings.valkey_at_least(8, 0) {
                // Valkey 8.0 lists SHOW between LOAD and HELP.
                let at = lines.len() - 2;
                lines.splice(
                    at..at,
                    ["SHOW <sha1>", "    Show a script from the scripts cache."],
                );
            }
            ctx.r().lines(&lines);
        }
        ("load", 3) => {
            let mut sc = take(ctx.node)?;
            let r = sc.load_script(ctx.arg(2));
            ctx.node.scripting = Some(sc);
            let sha = r.map_err(Error::Raw)?;
            ctx.r().bulk(sha.as_bytes());
        }
        ("exists", n) if n >= 3 => {
            let found: Vec<bool> = (2..n)
                .map(|i| {
                    let s = String::from_utf8_lossy(ctx.arg(i)).to_ascii_lowercase();
                    ctx.node
                        .scripting
                        .as_ref()
                        .is_some_and(|sc| sc.scripts.contains_key(&s))
                })
                .collect();
            ctx.r().array(found.len());
            for f in found {
                ctx.r().int(f as i64);
            }
        }
        ("flush", 2..=3) => {
            if !flush_mode_ok(ctx) {
                return Err(err("SCRIPT FLUSH only support SYNC|ASYNC option"));
            }
            if let Some(sc) = ctx.node.scripting.as_mut() {
                sc.flush_scripts();
            }
            ctx.r().ok();
        }
        ("kill", 2) => {
            // Scripts run to completion on the node's thread, so none is ever observed
            // running by another client.
            return Err(Error::Raw(
                "NOTBUSY No scripts in execution right now.".into(),
            ));
        }
        ("show", 3) if ctx.node.settings.valkey_at_least(8, 0) => {
            // Valkey 8.0 (eval.c scriptCommand): the cached body of a 40-character sha.
            let sha = String::from_utf8_lossy(ctx.arg(2)).to_ascii_lowercase();
            let body = ctx
                .node
                .scripting
                .as_ref()
                .filter(|_| ctx.arg(2).len() == 40)
                .and_then(|sc| sc.scripts.get(&sha))
                .map(|s| s.body.clone());
            match body {
                Some(b) => ctx.r().bulk(&b),
                None => {
                    return Err(Error::Raw(
                        "NOSCRIPT No matching script. Please use EVAL.".into(),
                    ))
                }
            }
        }
        ("debug", 3) => {
            // ElastiCache does not offer the Lua debugger.
            return Err(err("SCRIPT DEBUG is not supported"));
        }
        _ => {
            if matches!(
                sub.as_str(),
                "help" | "load" | "exists" | "flush" | "kill" | "debug"
            ) || (sub == "show" && ctx.node.settings.valkey_at_least(8, 0))
            {
                return Err(err(format!(
                    "wrong number of arguments for 'script|{sub}' command"
                )));
            }
            return Err(ctx.unknown_sub());
        }
    }
    Ok(())
}

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

/// FUNCTION LOAD/DELETE/FLUSH/RESTORE change the dataset: refused on replicas, propagated
/// verbatim to replicas.
fn function_write(ctx: &mut Ctx<'_>) -> CmdResult {
    if crate::replication::refuses_writes_from(ctx.node, ctx.client) {
        return Err(Error::Raw(
            "READONLY You can't write against a read only replica.".into(),
        ));
    }
    Ok(())
}

fn propagate_self(ctx: &mut Ctx<'_>) {
    ctx.node.dirty += 1;
    let parts: Vec<&[u8]> = ctx.args.iter().collect();
    crate::replication::propagate(ctx.node, None, &parts);
}

fn function(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    let argc = ctx.argc();
    match sub.as_str() {
        "help" if argc == 2 => ctx.r().lines(FUNCTION_HELP),
        "load" if argc >= 3 => {
            function_write(ctx)?;
            let mut replace = false;
            let mut i = 2;
            while i < argc - 1 {
                if ctx.arg_eq(i, "replace") {
                    replace = true;
                } else {
                    return Err(err(format!(
                        "Unknown option given: {}",
                        String::from_utf8_lossy(ctx.arg(i))
                    )));
                }
                i += 1;
            }
            let mut sc = take(ctx.node)?;
            let r = sc.load_library(ctx.arg(argc - 1), replace);
            ctx.node.scripting = Some(sc);
            let name = r.map_err(Error::Raw)?;
            propagate_self(ctx);
            ctx.r().bulk(name.as_bytes());
        }
        "delete" if argc == 3 => {
            function_write(ctx)?;
            let name = String::from_utf8_lossy(ctx.arg(2)).into_owned();
            let found = ctx
                .node
                .scripting
                .as_mut()
                .is_some_and(|sc| sc.delete_library(&name));
            if !found {
                return Err(err("Library not found"));
            }
            propagate_self(ctx);
            ctx.r().ok();
        }
        "flush" if argc <= 3 => {
            if !flush_mode_ok(ctx) {
                return Err(err("FUNCTION FLUSH only supports SYNC|ASYNC option"));
            }
            function_write(ctx)?;
            if let Some(sc) = ctx.node.scripting.as_mut() {
                sc.flush_libraries();
            }
            propagate_self(ctx);
            ctx.r().ok();
        }
        "kill" if argc == 2 => {
            return Err(Error::Raw(
                "NOTBUSY No scripts in execution right now.".into(),
            ));
        }
        "stats" if argc == 2 => {
            let (libs, funcs) = ctx
                .node
                .scripting
                .as_ref()
                .map(|sc| (sc.libraries.len(), sc.functions.len()))
                .unwrap_or((0, 0));
            let mut r = ctx.r();
            r.map(2);
            r.bulk(b"running_script");
            r.null();
            r.bulk(b"engines");
            r.map(1);
            r.bulk(b"LUA");
            r.map(2);
            r.bulk(b"libraries_count");
            r.int(libs as i64);
            r.bulk(b"functions_count");
            r.int(funcs as i64);
        }
        "list" => function_list(ctx)?,
        "dump" if argc == 2 => {
            let codes: Vec<Vec<u8>> = ctx
                .node
                .scripting
                .as_ref()
                .map(|sc| sc.libraries.values().map(|l| l.code.clone()).collect())
                .unwrap_or_default();
            let payload = dump_functions(&codes);
            ctx.r().bulk(&payload);
        }
        "restore" if (3..=4).contains(&argc) => {
            function_write(ctx)?;
            function_restore(ctx)?;
        }
        "help" | "load" | "delete" | "flush" | "kill" | "stats" | "dump" | "restore" => {
            return Err(err(format!(
                "wrong number of arguments for 'function|{sub}' command"
            )));
        }
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

fn function_list(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < ctx.argc() {
        if ctx.arg_eq(i, "withcode") {
            if with_code {
                return Err(err("Unknown argument withcode"));
            }
            with_code = true;
        } else if ctx.arg_eq(i, "libraryname") {
            if pattern.is_some() {
                return Err(err("Unknown argument libraryname"));
            }
            if i + 1 >= ctx.argc() {
                return Err(err("library name argument was not given"));
            }
            pattern = Some(ctx.arg(i + 1).to_vec());
            i += 1;
        } else {
            return Err(err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(ctx.arg(i))
            )));
        }
        i += 1;
    }
    let resp3 = ctx.client.resp3.get();
    let Some(sc) = ctx.node.scripting.as_ref() else {
        ctx.out.extend_from_slice(b"*0\r\n");
        return Ok(());
    };
    let libs: Vec<_> = sc
        .libraries
        .iter()
        .filter(|(name, _)| {
            pattern
                .as_ref()
                .is_none_or(|p| glob_match(p, name.as_bytes(), false))
        })
        .collect();
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(libs.len());
    for (name, lib) in libs {
        r.map(if with_code { 4 } else { 3 });
        r.bulk(b"library_name");
        r.bulk(name.as_bytes());
        r.bulk(b"engine");
        r.bulk(b"LUA");
        r.bulk(b"functions");
        r.array(lib.functions.len());
        for (fname, f) in &lib.functions {
            r.map(3);
            r.bulk(b"name");
            r.bulk(fname.as_bytes());
            r.bulk(b"description");
            match &f.description {
                Some(d) => r.bulk(d),
                None => r.null(),
            }
            r.bulk(b"flags");
            let names = f.flags.names();
            r.set(names.len());
            for n in names {
                r.simple(n);
            }
        }
        if with_code {
            r.bulk(b"library_code");
            r.bulk(&lib.code);
        }
    }
    Ok(())
}

/// RDB opcode of a function library in a dump (`RDB_OPCODE_FUNCTION2`).
const OPCODE_FUNCTION2: u8 = 0xf5;
/// RDB version written in the dump footer (Redis 7.0 writes 10).
const DUMP_RDB_VERSION: u16 = 10;

/// FUNCTION DUMP payload: per library the opcode and its code as an RDB string, then the
/// RDB version and a CRC64, like DUMP's.
pub fn dump_functions(codes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in codes {
        out.push(OPCODE_FUNCTION2);
        write_rdb_len(&mut out, c.len() as u64);
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&DUMP_RDB_VERSION.to_le_bytes());
    let crc = rdb::crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn write_rdb_len(out: &mut Vec<u8>, len: u64) {
    if len < 64 {
        out.push(len as u8);
    } else if len < 16384 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Read an RDB length; `Err` on truncation. Returns (value, is_encoded).
fn read_rdb_len(b: &[u8], pos: &mut usize) -> Option<(u64, bool)> {
    let c = *b.get(*pos)?;
    *pos += 1;
    match c >> 6 {
        0 => Some(((c & 0x3f) as u64, false)),
        1 => {
            let d = *b.get(*pos)?;
            *pos += 1;
            Some(((((c & 0x3f) as u64) << 8) | d as u64, false))
        }
        2 => {
            if c == 0x80 {
                let v = b.get(*pos..*pos + 4)?;
                *pos += 4;
                Some((u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as u64, false))
            } else if c == 0x81 {
                let v = b.get(*pos..*pos + 8)?;
                *pos += 8;
                let mut a = [0u8; 8];
                a.copy_from_slice(v);
                Some((u64::from_be_bytes(a), false))
            } else {
                None
            }
        }
        _ => Some(((c & 0x3f) as u64, true)),
    }
}

/// An RDB string (plain, integer-encoded or LZF-compressed).
fn read_rdb_string(b: &[u8], pos: &mut usize) -> Option<Vec<u8>> {
    let (len, enc) = read_rdb_len(b, pos)?;
    if !enc {
        let end = pos.checked_add(usize::try_from(len).ok()?)?;
        let s = b.get(*pos..end)?.to_vec();
        *pos = end;
        return Some(s);
    }
    match len {
        0 => {
            let v = *b.get(*pos)? as i8;
            *pos += 1;
            Some(v.to_string().into_bytes())
        }
        1 => {
            let v = b.get(*pos..*pos + 2)?;
            *pos += 2;
            Some(i16::from_le_bytes([v[0], v[1]]).to_string().into_bytes())
        }
        2 => {
            let v = b.get(*pos..*pos + 4)?;
            *pos += 4;
            Some(
                i32::from_le_bytes([v[0], v[1], v[2], v[3]])
                    .to_string()
                    .into_bytes(),
            )
        }
        3 => {
            let (clen, _) = read_rdb_len(b, pos)?;
            let (ulen, _) = read_rdb_len(b, pos)?;
            // A library is source code: refuse absurd sizes before allocating.
            if ulen > 512 << 20 {
                return None;
            }
            let end = pos.checked_add(usize::try_from(clen).ok()?)?;
            let data = b.get(*pos..end)?;
            *pos = end;
            rdb::lzf::decompress(data, ulen as usize).ok()
        }
        _ => None,
    }
}

fn parse_function_dump(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    if payload.len() < 10 {
        return None;
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > 11 {
        return None;
    }
    let mut crc_b = [0u8; 8];
    crc_b.copy_from_slice(&footer[2..]);
    let crc = u64::from_le_bytes(crc_b);
    if crc != 0 && rdb::crc64(0, &payload[..payload.len() - 8]) != crc {
        return None;
    }
    let mut pos = 0;
    let mut libs = Vec::new();
    while pos < body.len() {
        if body[pos] != OPCODE_FUNCTION2 {
            return None;
        }
        pos += 1;
        libs.push(read_rdb_string(body, &mut pos)?);
    }
    Some(libs)
}

fn function_restore(ctx: &mut Ctx<'_>) -> CmdResult {
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy = if ctx.argc() == 4 {
        if ctx.arg_eq(3, "flush") {
            Policy::Flush
        } else if ctx.arg_eq(3, "append") {
            Policy::Append
        } else if ctx.arg_eq(3, "replace") {
            Policy::Replace
        } else {
            return Err(err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ));
        }
    } else {
        Policy::Append
    };
    let Some(codes) = parse_function_dump(ctx.arg(2)) else {
        return Err(err("DUMP payload version or checksum are wrong"));
    };
    let mut sc = take(ctx.node)?;
    // Load into a scratch engine first so a failure leaves the libraries untouched.
    let res = (|| {
        let mut scratch = Scripting::new().map_err(err)?;
        for c in &codes {
            scratch.load_library(c, false).map_err(Error::Raw)?;
        }
        if policy == Policy::Flush {
            sc.flush_libraries();
        }
        if policy == Policy::Append {
            for name in scratch.libraries.keys() {
                if sc.libraries.contains_key(name) {
                    return Err(err(format!("Library {name} already exists")));
                }
            }
        }
        for (lname, lib) in scratch.libraries.iter() {
            for f in lib.functions.keys() {
                if let Some(owner) = sc.functions.get(f) {
                    if owner != lname {
                        return Err(err(format!("Function {f} already exists")));
                    }
                }
            }
        }
        for c in &codes {
            sc.load_library(c, true).map_err(Error::Raw)?;
        }
        Ok(())
    })();
    ctx.node.scripting = Some(sc);
    res?;
    propagate_self(ctx);
    ctx.r().ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_round_trip() {
        let codes = vec![b"#!lua name=a\nx".to_vec(), vec![b'y'; 20000]];
        let d = dump_functions(&codes);
        assert_eq!(parse_function_dump(&d), Some(codes));
        let mut bad = d.clone();
        bad[3] ^= 1;
        assert_eq!(parse_function_dump(&bad), None);
    }
}
