//! Embedded Lua 5.1 for EVAL and FUNCTION, as Redis 7.0 runs it.
//!
//! One `Scripting` per node (in `Node::scripting`), used only on the node's thread. It holds
//! two Lua states like Redis: one for EVAL scripts, one for function libraries.
//!
//! Sandbox: Redis 7.0 marks the globals table and the library tables read-only inside its
//! patched Lua. Stock Lua 5.1 has no read-only tables, so scripts run with a proxy
//! environment instead: reads fall through to the real globals (a missing name raises
//! "Script attempted to access nonexistent global variable"), writes raise "Attempt to modify
//! a readonly table"; library tables are read-only proxies; `rawset`/`setmetatable` refuse
//! protected tables; `loadstring`/`load` give the chunks they compile the same environment.
//!
//! `redis.call` reaches the node through a function created in an `mlua` scope for the
//! duration of one run, so the node is borrowed safely; commands go through `cmd::call`
//! (keyspace effects, WATCH invalidation, replication) with a dedicated script client.

pub mod busy;
pub mod libs;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;
use mlua::{Function, Lua, MultiValue, Table, Value, Variadic};

use crate::cmd::{self, Error, F_DENYOOM, F_NOSCRIPT, F_WRITE};
use crate::node::{Client, Node};
use crate::resp::{fmt_double, OwnedCmd, Reply};

/// Chunk name of our own Lua code: the error handler skips these frames.
const INTERNAL: &str = "=[redis]";

/// Script flags (shebang `flags=` / `register_function` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// No shebang: Redis's "eval compat mode".
    pub compat: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot: bool,
}

impl Flags {
    fn parse(list: &[&str]) -> Result<Flags, String> {
        let mut f = Flags::default();
        for w in list {
            match *w {
                "no-writes" => f.no_writes = true,
                "allow-oom" => f.allow_oom = true,
                "allow-stale" => f.allow_stale = true,
                "no-cluster" => f.no_cluster = true,
                "allow-cross-slot-keys" => f.allow_cross_slot = true,
                "" => {}
                other => return Err(other.to_string()),
            }
        }
        Ok(f)
    }
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.no_writes {
            v.push("no-writes");
        }
        if self.allow_oom {
            v.push("allow-oom");
        }
        if self.allow_stale {
            v.push("allow-stale");
        }
        if self.no_cluster {
            v.push("no-cluster");
        }
        if self.allow_cross_slot {
            v.push("allow-cross-slot-keys");
        }
        v
    }
}

/// Parse an EVAL script's shebang. Returns the flags and the body to compile (the shebang
/// line blanked so line numbers stay those of the original).
pub fn eval_shebang(body: &[u8]) -> Result<(Flags, Vec<u8>), String> {
    if !body.starts_with(b"#!") {
        return Ok((
            Flags {
                compat: true,
                ..Flags::default()
            },
            body.to_vec(),
        ));
    }
    let end = body.iter().position(|&c| c == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[..end]).into_owned();
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = Flags::default();
    for p in parts {
        if let Some(list) = p.strip_prefix("flags=") {
            let names: Vec<&str> = list.split(',').collect();
            flags = Flags::parse(&names)
                .map_err(|f| format!("Unexpected flag in script shebang: {f}"))?;
        } else {
            return Err(format!("Unknown lua shebang option: {p}"));
        }
    }
    Ok((flags, body[end..].to_vec()))
}

/// A cached EVAL script.
pub struct Script {
    pub body: Vec<u8>,
    pub func: Function,
    pub flags: Flags,
}

/// One function of a library.
pub struct LibFunction {
    pub func: Function,
    pub flags: Flags,
    pub description: Option<Vec<u8>>,
}

/// A loaded function library.
pub struct Library {
    pub code: Vec<u8>,
    pub functions: IndexMap<String, LibFunction>,
}

pub struct Scripting {
    lua: State,
    /// Keyed by sha (looked up on every EVALSHA: the crate's fast hasher).
    pub scripts: HashMap<String, Script, crate::db::Hasher>,
    flua: Option<State>,
    pub libraries: IndexMap<String, Library>,
    /// function name -> library name
    pub functions: HashMap<String, String>,
    /// A client that runs scripts' commands (the caller's db, the script's protocol).
    sclient: Rc<Client>,
    /// Buffers redis.call reuses across calls and runs (no allocation per call).
    /// (Cells: a run borrows the scripting state shared, the compiled function with it.)
    spare_cmd: std::cell::Cell<OwnedCmd>,
    spare_out: std::cell::Cell<Vec<u8>>,
}

/// Largest buffer kept for reuse between script runs.
const SPARE_MAX: usize = 64 * 1024;

/// Id of the script client (never in `node.clients`).
pub const SCRIPT_CLIENT_ID: u64 = u64::MAX;

/// The Lua code that builds the sandbox (runs once per state, in the real globals).
const SETUP: &str = r#"
local impl, fenv_setter = ...
local G = _G
local getinfo = debug.getinfo
local rawget, rawset, setmetatable, getmetatable, error, tostring, type, select =
      rawget, rawset, setmetatable, getmetatable, error, tostring, type, select
local setfenv, loadstring, load = setfenv, loadstring, load
local xpcall = xpcall

-- Globals Redis does not offer scripts.
for _, name in ipairs({'debug', 'print', 'getfenv', 'setfenv', 'newproxy', 'module',
                       'require', 'package', 'os', 'io', 'dofile', 'loadfile'}) do
  rawset(G, name, nil)
end

local protected = setmetatable({}, {__mode = 'k'})
local function readonly_err() error('Attempt to modify a readonly table', 2) end
local function proxy(t)
  local p = setmetatable({}, {__index = t, __newindex = readonly_err, __metatable = false})
  protected[p] = true
  return p
end
impl.proxy = proxy

rawset(G, 'rawset', function(t, k, v)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end)
rawset(G, 'setmetatable', function(t, m)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, m)
end)
-- Redis's pcall turns error tables ({err=...}) into their message.
local pcall, conv_err = pcall, impl.conv_err
local function fix(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == 'userdata' then
    e = conv_err(e, true)
  elseif type(e) == 'table' and type(rawget(e, 'err')) == 'string' then
    e = rawget(e, 'err')
  end
  return false, e
end
rawset(G, 'pcall', function(f, ...) return fix(pcall(f, ...)) end)

-- The environment scripts see.
local env = setmetatable({}, {__index = G, __newindex = readonly_err, __metatable = false})
protected[env] = true
setmetatable(G, {__index = function(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end})
impl.env = env
rawset(G, '_G', env)

rawset(G, 'loadstring', function(s, name)
  local f, e = loadstring(s, name)
  if f then setfenv(f, env) end
  return f, e
end)
rawset(G, 'load', function(fn, name)
  local f, e = load(fn, name)
  if f then setfenv(f, env) end
  return f, e
end)

function impl.setenv(f) setfenv(f, env) return f end

local redis = {}
redis.error_reply = function(e)
  if type(e) ~= 'string' then return {err = 'ERR wrong number or type of arguments'} end
  if e:sub(1, 1) == '-' then e = e:sub(2) end
  return {err = e}
end
redis.status_reply = function(s)
  if type(s) ~= 'string' then return {err = 'ERR wrong number or type of arguments'} end
  return {ok = s}
end
redis.LOG_DEBUG = 0
redis.LOG_VERBOSE = 1
redis.LOG_NOTICE = 2
redis.LOG_WARNING = 3
redis.REPL_NONE = 0
redis.REPL_AOF = 1
redis.REPL_SLAVE = 2
redis.REPL_REPLICA = 2
redis.REPL_ALL = 3
redis.replicate_commands = function() return true end
redis.set_repl = function(x)
  if type(x) ~= 'number' then error({err = 'ERR redis.set_repl() requires one argument.'}) end
  if x < 0 or x > 3 then error({err = 'ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'}) end
end
impl.redis = redis

__redis__err__handler = function(err)
  local lvl = 2
  local i = getinfo(lvl, 'nSl')
  while i and (i.what == 'C' or i.what == 'tail' or i.source == '=[redis]') do
    lvl = lvl + 1
    i = getinfo(lvl, 'nSl')
  end
  if type(err) == 'userdata' then
    err = conv_err(err, false)
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
local handler = __redis__err__handler
function impl.run(f) return xpcall(f, handler) end
-- EVAL scripts see KEYS and ARGV as globals for the run (set here, in one call from Rust).
function impl.run_eval(f, k, a)
  rawset(G, 'KEYS', k)
  rawset(G, 'ARGV', a)
  local ok, r = xpcall(f, handler)
  rawset(G, 'KEYS', nil)
  rawset(G, 'ARGV', nil)
  return ok, r
end
function impl.run_fn(f, k, a) return xpcall(function() return f(k, a) end, handler) end
"#;

/// Per-run state `redis.call` works on.
struct RunCtx<'a> {
    node: &'a mut Node,
    sclient: Rc<Client>,
    read_only: bool,
    allow_oom: bool,
    wrote: bool,
    /// `redis.setresp(3)` was called.
    resp3: bool,
    out: Vec<u8>,
    /// The command redis.call builds (reused).
    cmd: OwnedCmd,
}

thread_local! {
    /// The running script's `RunCtx` (type-erased), set by `Scripting::run` for the duration
    /// of the Lua call. Taken out while in use, so at most one `&mut` exists at a time.
    static CTX: std::cell::Cell<*mut ()> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Run `f` on the current script's context (None outside a script run, or re-entrantly).
fn with_ctx<R>(f: impl FnOnce(&mut RunCtx<'_>) -> R) -> Option<R> {
    let p = CTX.with(|c| c.replace(std::ptr::null_mut()));
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` was set by `Scripting::run` from a `RunCtx` on its stack, which outlives the
    // Lua call during which this runs (it clears CTX before the `RunCtx` is used again or
    // dropped, also on unwind). Taking the pointer out of CTX makes this the only reference
    // until it is put back below.
    let r = f(unsafe { &mut *(p as *mut RunCtx<'static>) });
    CTX.with(|c| c.set(p));
    Some(r)
}

/// Clears CTX when a run ends (also on unwind).
struct CtxGuard;

impl Drop for CtxGuard {
    fn drop(&mut self) {
        CTX.with(|c| c.set(std::ptr::null_mut()));
    }
}

/// A Lua state and the handles the hot path needs.
struct State {
    lua: Lua,
    run: Function,
    run_fn: Function,
}

/// How a script is invoked.
pub struct Invocation<'a> {
    pub keys: crate::resp::Args<'a>,
    pub args: crate::resp::Args<'a>,
    /// Name in error messages: the sha for EVAL, the function name for FCALL.
    pub funcname: String,
    /// EVAL_RO / EVALSHA_RO / FCALL_RO.
    pub ro_command: bool,
    /// The command line (FUNCTION STATS while busy).
    pub command: Vec<Vec<u8>>,
}

impl Scripting {
    pub fn new() -> Result<Scripting, String> {
        let lua = new_state(false).map_err(|e| e.to_string())?;
        Ok(Scripting {
            lua,
            scripts: HashMap::default(),
            flua: None,
            libraries: IndexMap::new(),
            functions: HashMap::new(),
            sclient: Rc::new(Client::new(
                SCRIPT_CLIENT_ID,
                String::new(),
                String::new(),
                -1,
            )),
            spare_cmd: Default::default(),
            spare_out: Default::default(),
        })
    }

    /// Compile an EVAL script (cached by sha). Errors are complete reply lines.
    pub fn load_script(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, code) = eval_shebang(body).map_err(|e| format!("ERR {e}"))?;
        let func = compile(&self.lua.lua, &code, "@user_script")
            .map_err(|e| format!("ERR Error compiling script (new function): {e}"))?;
        self.scripts.insert(
            sha.clone(),
            Script {
                body: body.to_vec(),
                func,
                flags,
            },
        );
        Ok(sha)
    }

    pub fn flush_scripts(&mut self) {
        self.scripts.clear();
        // A fresh state drops the compiled functions and any garbage.
        if let Ok(l) = new_state(false) {
            self.lua = l;
        }
    }

    /// Run a cached EVAL script.
    pub fn run_script(
        &mut self,
        node: &mut Node,
        caller: &Rc<Client>,
        sha: &str,
        inv: Invocation<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let Some(s) = self.scripts.get(sha) else {
            return Err(Error::Raw(
                "NOSCRIPT No matching script. Please use EVAL.".into(),
            ));
        };
        // Borrowed, not cloned: a clone is a new Lua reference per call.
        let st = &self.lua;
        self.run(
            &st.lua, &st.run, node, caller, &s.func, s.flags, inv, out, false,
        )
    }

    /// Run a library function.
    pub fn run_function(
        &mut self,
        node: &mut Node,
        caller: &Rc<Client>,
        name: &str,
        inv: Invocation<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let Some(f) = self
            .functions
            .get(name)
            .and_then(|lib| self.libraries.get(lib))
            .and_then(|l| l.functions.get(name))
        else {
            return Err(cmd::err("Function not found"));
        };
        let Some(st) = self.flua.as_ref() else {
            return Err(cmd::err("Function not found"));
        };
        self.run(
            &st.lua, &st.run_fn, node, caller, &f.func, f.flags, inv, out, true,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        lua: &Lua,
        runner: &Function,
        node: &mut Node,
        caller: &Rc<Client>,
        func: &Function,
        flags: Flags,
        inv: Invocation<'_>,
        out: &mut Vec<u8>,
        is_function: bool,
    ) -> Result<(), Error> {
        let Invocation {
            keys,
            args,
            funcname,
            ro_command,
            command,
        } = inv;
        // scriptPrepareForRun: checks of scripts that declare flags.
        if !flags.compat {
            let max = node.settings.maxmemory;
            if !flags.allow_oom
                && !flags.no_writes
                && max > 0
                && !node.repl.is_replica()
                && node.used_memory() > max
            {
                // Redis refuses it before the script starts (the script's flags make the
                // command deny-oom), with the generic error.
                return Err(Error::Raw(
                    "OOM command not allowed when used memory > 'maxmemory'.".into(),
                ));
            }
            if !flags.no_writes {
                if crate::replication::refuses_writes_from(node, caller) {
                    // As for OOM: the script's flags make EVAL a write command.
                    return Err(Error::Raw(
                        "READONLY You can't write against a read only replica.".into(),
                    ));
                }
                if ro_command {
                    return Err(cmd::err(
                        "Can not execute a script with write flag using *_ro command.",
                    ));
                }
            }
        }
        let sclient = self.sclient.clone();
        sclient.db.set(caller.db.get());
        sclient.resp3.set(false);
        sclient.authed.set(true);
        sclient.woff.set(caller.woff.get());
        // Commands a script runs are checked against the ACL user that runs the script
        // (only nodes with ACL users check; the others skip the copy on this hot path).
        if node.acl.is_some() {
            sclient.user.borrow_mut().clone_from(&caller.user.borrow());
        }
        let caller_resp3 = caller.resp3.get();
        let running = Rc::new(busy::Running {
            started: std::time::Instant::now(),
            threshold: std::cell::Cell::new(None),
            calls: std::cell::Cell::new(0),
            is_eval: !is_function,
            caller: caller.id,
            killed: std::cell::Cell::new(false),
            last_poll: std::cell::Cell::new(None),
            name: funcname,
            command,
            touched: RefCell::new(Vec::new()),
            libs: self.libraries.len(),
            funcs: self.functions.len(),
        });
        busy::RUNNING.with(|r| *r.borrow_mut() = Some(running.clone()));
        let started = crate::replication::script_begin(node);
        let prev_client = node.current_client;
        node.current_client = SCRIPT_CLIENT_ID;
        let mut ctx = RunCtx {
            node,
            sclient: sclient.clone(),
            read_only: flags.no_writes || ro_command,
            allow_oom: flags.allow_oom,
            wrote: false,
            resp3: false,
            out: self.spare_out.take(),
            cmd: self.spare_cmd.take(),
        };
        let result = {
            let _guard = CtxGuard;
            CTX.with(|c| c.set(&mut ctx as *mut RunCtx<'_> as *mut ()));
            (|| -> mlua::Result<(bool, Value)> {
                let (keys, argv) = make_arrays(lua, keys, args)?;
                // Functions get the keys and arguments as parameters, EVAL scripts as the
                // KEYS/ARGV globals (the runner sets them).
                let (ok, val): (Value, Value) = runner.call((func, keys, argv))?;
                Ok((matches!(ok, Value::Boolean(true)), val))
            })()
        };
        // CTX is clear again: `ctx` is ours alone. The reply goes straight to `out` (nothing
        // else writes there before it is returned).
        let result = result.map(|(ok, val)| {
            if ok {
                to_resp(&val, out, ctx.resp3, caller_resp3, 0);
            } else {
                out.extend_from_slice(error_reply(&val, &running.name).as_bytes());
            }
        });
        let wrote = ctx.wrote;
        // Keep the buffers for the next call unless a big reply made them large.
        if ctx.out.capacity() <= SPARE_MAX {
            ctx.out.clear();
            self.spare_out.set(ctx.out);
        }
        if ctx.cmd.buf.capacity() <= SPARE_MAX {
            self.spare_cmd.set(ctx.cmd);
        }
        let node = ctx.node;
        busy::RUNNING.with(|r| *r.borrow_mut() = None);
        busy::finish(node, &running);
        node.current_client = prev_client;
        crate::replication::script_end(node, caller, started);
        if wrote && sclient.woff.get() > caller.woff.get() {
            caller.woff.set(sclient.woff.get());
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(cmd::err(format!(
                "Error running script (call to f_{}): {}",
                running.name, e
            ))),
        }
    }

    /// FUNCTION LOAD. Returns the library name.
    pub fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, body) = library_shebang(code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        if self.flua.is_none() {
            self.flua = Some(new_state(true).map_err(|e| format!("ERR {e}"))?);
        }
        let Some(lua) = self.flua.as_ref().map(|s| s.lua.clone()) else {
            return Err("ERR function engine unavailable".into());
        };
        let funcs = register_library(&lua, &body)?;
        // Name collisions with other libraries.
        for f in funcs.keys() {
            if let Some(owner) = self.functions.get(f) {
                if *owner != name {
                    return Err(format!("ERR Function {f} already exists"));
                }
            }
        }
        if let Some(old) = self.libraries.shift_remove(&name) {
            for f in old.functions.keys() {
                self.functions.remove(f);
            }
        }
        for f in funcs.keys() {
            self.functions.insert(f.clone(), name.clone());
        }
        self.libraries.insert(
            name.clone(),
            Library {
                code: code.to_vec(),
                functions: funcs,
            },
        );
        Ok(name)
    }

    pub fn delete_library(&mut self, name: &str) -> bool {
        match self.libraries.shift_remove(name) {
            Some(lib) => {
                for f in lib.functions.keys() {
                    self.functions.remove(f);
                }
                true
            }
            None => false,
        }
    }

    pub fn flush_libraries(&mut self) {
        self.libraries.clear();
        self.functions.clear();
        self.flua = None;
    }
}

/// Replace the node's function libraries with those of an RDB being loaded (a full sync
/// carries all of them).
pub fn load_rdb_functions(node: &mut Node, codes: &[Vec<u8>]) -> Result<(), String> {
    if codes.is_empty()
        && node
            .scripting
            .as_ref()
            .is_none_or(|s| s.libraries.is_empty())
    {
        return Ok(());
    }
    let mut sc = match node.scripting.take() {
        Some(s) => s,
        None => Box::new(Scripting::new()?),
    };
    sc.flush_libraries();
    let mut res = Ok(());
    for c in codes {
        if let Err(e) = sc.load_library(c, true) {
            res = Err(format!("function library in RDB: {e}"));
            break;
        }
    }
    node.scripting = Some(sc);
    res
}

/// `#!lua name=<lib>` of a library. Returns (name, body with the shebang line blanked).
fn library_shebang(code: &[u8]) -> Result<(String, Vec<u8>), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let end = code.iter().position(|&c| c == b'\n').unwrap_or(code.len());
    let line = String::from_utf8_lossy(&code[..end]).into_owned();
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("").trim_start_matches("#!");
    if engine != "lua" {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let mut name = None;
    for p in parts {
        match p.split_once('=') {
            Some(("name", v)) => name = Some(v.to_string()),
            _ => return Err(format!("ERR Invalid metadata value given: {p}")),
        }
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    Ok((name, code[end..].to_vec()))
}

/// Run a library's code with `redis.register_function` available; collect its functions.
fn register_library(lua: &Lua, body: &[u8]) -> Result<IndexMap<String, LibFunction>, String> {
    let chunk = compile(lua, body, "@user_function")
        .map_err(|e| format!("ERR Error compiling function: {e}"))?;
    let funcs: RefCell<IndexMap<String, LibFunction>> = RefCell::new(IndexMap::new());
    let res: mlua::Result<Result<(), String>> = lua.scope(|scope| {
        let impl_t: Table = lua.named_registry_value("redis_impl")?;
        let funcs = &funcs;
        let reg = scope.create_function(move |_, args: Variadic<Value>| {
            register_function(&args, funcs).map_err(|e| raise_table(&format!("ERR {e}")))
        })?;
        // The load-time `redis` table offers only register_function, log and the constants.
        let load_env: Table = impl_t.raw_get("load_redis")?;
        load_env.raw_set("register_function", reg)?;
        let runner: Function = impl_t.raw_get("run")?;
        let res: MultiValue = runner.call(chunk)?;
        load_env.raw_set("register_function", Value::Nil)?;
        let mut it = res.into_iter();
        if matches!(it.next(), Some(Value::Boolean(true))) {
            Ok(Ok(()))
        } else {
            let e = it.next().unwrap_or(Value::Nil);
            Ok(Err(error_text(&e)))
        }
    });
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("ERR Error registering functions: {e}")),
        Err(e) => return Err(format!("ERR Error registering functions: {e}")),
    }
    let funcs = funcs.into_inner();
    if funcs.is_empty() {
        return Err("ERR No functions registered".into());
    }
    Ok(funcs)
}

fn register_function(
    args: &[Value],
    funcs: &RefCell<IndexMap<String, LibFunction>>,
) -> Result<(), String> {
    let (name, callback, flags, desc) = match args {
        [Value::Table(t)] => {
            let mut name = None;
            let mut cb = None;
            let mut flags = Flags::default();
            let mut desc = None;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let Value::String(k) = k else {
                    return Err("unknown argument given to redis.register_function".into());
                };
                match &*k.to_str().map_err(|e| e.to_string())? {
                    "function_name" => match lua_str(&v) {
                        Some(s) => name = Some(s),
                        _ => return Err("function_name argument given to register_function must be a string".into()),
                    },
                    "callback" => match v {
                        Value::Function(f) => cb = Some(f),
                        _ => return Err("callback argument given to redis.register_function must be a function".into()),
                    },
                    "description" => match lua_str(&v) {
                        Some(s) => desc = Some(s.into_bytes()),
                        _ => return Err("description argument given to register_function must be a string".into()),
                    },
                    "flags" => match v {
                        Value::Table(ft) => {
                            let mut names = Vec::new();
                            for i in 1..=ft.raw_len() {
                                match ft.raw_get::<Value>(i) {
                                    Ok(Value::String(s)) => names.push(s.to_string_lossy()),
                                    _ => return Err("unknown flag given".into()),
                                }
                            }
                            let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
                            flags = Flags::parse(&refs).map_err(|_| "unknown flag given".to_string())?;
                        }
                        _ => return Err("flags argument to redis.register_function must be a table representing function flags".into()),
                    },
                    _ => return Err("unknown argument given to redis.register_function".into()),
                }
            }
            let Some(name) = name else {
                return Err("redis.register_function must get a function name argument".into());
            };
            let Some(cb) = cb else {
                return Err("redis.register_function must get a callback argument".into());
            };
            (name, cb, flags, desc)
        }
        [n, Value::Function(f)] => match lua_str(n) {
            Some(n) => (n, f.clone(), Flags::default(), None),
            None => return Err("first argument to redis.register_function must be a string".into()),
        },
        [_, _] => {
            return Err("second argument to redis.register_function must be a function".into());
        }
        [_] => {
            return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
        }
        _ => return Err("wrong number of arguments to redis.register_function".into()),
    };
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        // (sic: Redis 7.0 words it so)
        return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    let mut f = funcs.borrow_mut();
    if f.contains_key(&name) {
        return Err("Function already exists in the library".into());
    }
    f.insert(
        name,
        LibFunction {
            func: callback,
            flags,
            description: desc,
        },
    );
    Ok(())
}

/// `lua_tostring` of strings and numbers.
fn lua_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(lua_num_str(*n)),
        _ => None,
    }
}

fn compile(lua: &Lua, code: &[u8], name: &str) -> Result<Function, String> {
    let f = lua
        .load(code)
        .set_name(name)
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function()
        .map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => message,
            other => other.to_string(),
        })?;
    let impl_t: Table = lua
        .named_registry_value("redis_impl")
        .map_err(|e| e.to_string())?;
    let setenv: Function = impl_t.raw_get("setenv").map_err(|e| e.to_string())?;
    setenv.call(f).map_err(|e| e.to_string())
}

/// A Lua state with Redis's libraries and sandbox. `functions` builds the state of the
/// function engine (whose load-time `redis` table differs).
fn new_state(functions: bool) -> mlua::Result<State> {
    use mlua::StdLib;
    // SAFETY: the debug library is needed by the error handler; it is removed from the
    // globals before any user code runs (see SETUP).
    let lua = unsafe {
        Lua::unsafe_new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
            mlua::LuaOptions::new(),
        )
    };
    let impl_t = lua.create_table()?;
    impl_t.raw_set("conv_err", lua.create_function(conv_err)?)?;
    lua.set_named_registry_value("redis_impl", &impl_t)?;
    lua.load(SETUP)
        .set_name(INTERNAL)
        .call::<()>((impl_t.clone(), Value::Nil))?;
    let globals = lua.globals();
    let proxy: Function = impl_t.raw_get("proxy")?;
    let redis: Table = impl_t.raw_get("redis")?;
    let sha = lua.create_function(|lua, args: Variadic<Value>| {
        if args.len() != 1 {
            return Err(raise_table("ERR wrong number of arguments"));
        }
        let s = match &args[0] {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Integer(i) => i.to_string().into_bytes(),
            Value::Number(n) => lua_num_str(*n).into_bytes(),
            _ => Vec::new(),
        };
        Ok(MultiValue::from_vec(vec![Value::String(
            lua.create_string(sha1hex(&s))?,
        )]))
    })?;
    redis.raw_set("sha1hex", sha)?;
    let log = lua.create_function(|_, args: Variadic<Value>| {
        if args.len() < 2 {
            return Err(raise_table(
                "ERR redis.log() requires two arguments or more.",
            ));
        }
        let level = match &args[0] {
            Value::Integer(i) => *i,
            Value::Number(n) => *n as i64,
            _ => {
                return Err(raise_table(
                    "ERR First argument must be a number (log level).",
                ))
            }
        };
        if !(0..=3).contains(&level) {
            return Err(raise_table("ERR Invalid debug level."));
        }
        let mut msg = String::new();
        for (i, a) in args.iter().skip(1).enumerate() {
            if i > 0 {
                msg.push(' ');
            }
            match a {
                Value::String(s) => msg.push_str(&s.to_string_lossy()),
                Value::Integer(n) => msg.push_str(&n.to_string()),
                Value::Number(n) => msg.push_str(&lua_num_str(*n)),
                _ => {}
            }
        }
        tracing::info!(target: "redis_engine::lua", level, "{msg}");
        Ok(MultiValue::new())
    })?;
    redis.raw_set("log", log.clone())?;
    let setresp = lua.create_function(|_, args: Variadic<Value>| {
        if args.len() != 1 {
            return Err(raise_table("ERR redis.setresp() requires one argument."));
        }
        let v = match &args[0] {
            Value::Integer(i) => *i,
            Value::Number(n) => *n as i64,
            _ => 0,
        };
        if v != 2 && v != 3 {
            return Err(raise_table("ERR RESP version must be 2 or 3."));
        }
        with_ctx(|st| st.resp3 = v == 3);
        Ok(MultiValue::new())
    })?;
    redis.raw_set("setresp", setresp)?;
    let call = lua.create_function(|lua, args: Variadic<Value>| {
        match with_ctx(|st| dispatch(lua, st, &args)) {
            Some(r) => match r? {
                Ok(v) => Ok(v),
                Err(msg) => Err(raise_table(&msg)),
            },
            None => Err(raise_table(
                "ERR redis.call can only be used while a script runs",
            )),
        }
    })?;
    let pcall = lua.create_function(|lua, args: Variadic<Value>| {
        match with_ctx(|st| dispatch(lua, st, &args)) {
            Some(r) => match r? {
                Ok(v) => Ok(v),
                Err(msg) => table_err(lua, &msg),
            },
            None => table_err(lua, "ERR redis.pcall can only be used while a script runs"),
        }
    })?;
    redis.raw_set("call", call)?;
    redis.raw_set("pcall", pcall)?;
    libs::install(&lua, &globals)?;
    lua.set_hook(
        mlua::HookTriggers::new().every_nth_instruction(busy::HOOK_EVERY),
        |_, _| {
            let Some(run) = busy::current() else {
                return Ok(mlua::VmState::Continue);
            };
            if !run.killed.get() {
                let elapsed = run.started.elapsed().as_millis() as u64;
                match with_ctx(|st| run.threshold_ms(st.node)) {
                    Some(t) if elapsed >= t => {}
                    _ => return Ok(mlua::VmState::Continue),
                }
            }
            // The hook cannot fire inside redis.call (no Lua runs there), so CTX is free.
            if let Some(Some(msg)) = with_ctx(|st| busy::on_hook(st.node, st.wrote)) {
                return Err(raise_table(msg));
            }
            Ok(mlua::VmState::Continue)
        },
    )?;
    // Library tables become read-only proxies, like Redis's read-only tables.
    for name in [
        "string",
        "table",
        "math",
        "coroutine",
        "bit",
        "cjson",
        "struct",
        "cmsgpack",
    ] {
        if let Value::Table(t) = globals.raw_get::<Value>(name)? {
            globals.raw_set(name, proxy.call::<Table>(t)?)?;
        }
    }
    if functions {
        // At load time the library code sees a reduced `redis` table; at run time the full
        // one (functions' runtime API equals EVAL's).
        let load_redis = lua.create_table()?;
        load_redis.raw_set("log", log)?;
        for k in [
            "LOG_DEBUG",
            "LOG_VERBOSE",
            "LOG_NOTICE",
            "LOG_WARNING",
            "REPL_NONE",
            "REPL_AOF",
            "REPL_SLAVE",
            "REPL_REPLICA",
            "REPL_ALL",
            "setresp",
        ] {
            load_redis.raw_set(k, redis.raw_get::<Value>(k)?)?;
        }
        impl_t.raw_set("load_redis", load_redis.clone())?;
        impl_t.raw_set("run_redis", redis.clone())?;
        // `redis` resolves to the load-time table while a library loads (register_function
        // is set only then), and to the runtime table otherwise.
        let mt = lua.create_table()?;
        let idx = lua
            .load(
                "local load_redis, run_redis = ... return function(_, k) \
                 if rawget(load_redis, 'register_function') then \
                   local v = rawget(load_redis, k) \
                   if v == nil then error(\"Script attempted to access nonexistent global variable '\" .. tostring(k) .. \"'\", 2) end \
                   return v end \
                 return run_redis[k] end",
            )
            .set_name(INTERNAL)
            .call::<Function>((load_redis, redis))?;
        mt.raw_set("__index", idx)?;
        mt.raw_set(
            "__newindex",
            lua.load("return function() error('Attempt to modify a readonly table', 2) end")
                .set_name(INTERNAL)
                .call::<Function>(())?,
        )?;
        mt.raw_set("__metatable", false)?;
        let r = lua.create_table()?;
        r.set_metatable(Some(mt))?;
        globals.raw_set("redis", r)?;
    } else {
        globals.raw_set("redis", proxy.call::<Table>(redis)?)?;
    }
    let run: Function = impl_t.raw_get("run_eval")?;
    let run_fn: Function = impl_t.raw_get("run_fn")?;
    Ok(State { lua, run, run_fn })
}

/// Errors our Rust functions raise, told apart by the error handler and `pcall`.
#[derive(Debug, thiserror::Error)]
pub enum ScriptErr {
    /// Raised as Redis's error tables ({err=msg}), e.g. by `redis.call`.
    #[error("{0}")]
    Table(String),
    /// Raised as a string, like C's `luaL_error` (position already included).
    #[error("{0}")]
    Str(String),
}

pub(crate) fn raise_table(msg: &str) -> mlua::Error {
    mlua::Error::external(ScriptErr::Table(msg.to_string()))
}

/// A `luaL_error`-style error: prefixed with the calling Lua code's position.
pub(crate) fn raise_lib(lua: &Lua, msg: &str) -> mlua::Error {
    let (pos, from_c) = lua
        .inspect_stack(1, |d| {
            let line = d.current_line();
            let src = d.source();
            let from_c = src.what == "C";
            let short = src.short_src.map(|s| s.into_owned());
            match (short, line) {
                (Some(s), Some(l)) if l > 0 => (format!("{s}:{l}: "), from_c),
                _ => (String::new(), from_c),
            }
        })
        .unwrap_or_default();
    let mut msg = msg.to_string();
    // luaL_argerror names the function from the calling instruction: called from C (pcall)
    // there is none, and it says '?'.
    if from_c && msg.starts_with("bad argument #") {
        if let Some(a) = msg.find(" to '") {
            if let Some(b) = msg[a + 5..].find('\'') {
                msg.replace_range(a + 5..a + 5 + b, "?");
            }
        }
    }
    mlua::Error::external(ScriptErr::Str(format!("{pos}{msg}")))
}

/// `impl.conv_err(e, for_pcall)`: an error raised by Rust code as the Lua value Redis has.
fn conv_err(lua: &Lua, (v, for_pcall): (Value, bool)) -> mlua::Result<Value> {
    let Value::Error(e) = v else { return Ok(v) };
    match e.downcast_ref::<ScriptErr>() {
        Some(ScriptErr::Table(m)) if !for_pcall => table_err(lua, m),
        Some(ScriptErr::Table(m)) | Some(ScriptErr::Str(m)) => {
            Ok(Value::String(lua.create_string(m)?))
        }
        None => {
            let mut cur: &mlua::Error = &e;
            while let mlua::Error::CallbackError { cause, .. } = cur {
                cur = cause;
            }
            Ok(Value::String(lua.create_string(cur.to_string())?))
        }
    }
}

/// The KEYS and ARGV tables, built on the Lua stack in one protected call (no Lua string
/// handle per element).
fn make_arrays(
    lua: &Lua,
    keys: crate::resp::Args<'_>,
    args: crate::resp::Args<'_>,
) -> mlua::Result<(Table, Table)> {
    use mlua::ffi;
    use std::os::raw::{c_char, c_int};
    // SAFETY: `exec_raw` runs the closure in a protected call with room for 3 more stack
    // slots; it uses at most 3 (the two tables and one string) and leaves exactly the two
    // tables, which become the results. Errors (out of memory) are caught by that call.
    unsafe {
        lua.exec_raw((), |state| {
            for items in [keys, args] {
                ffi::lua_createtable(state, c_int::try_from(items.len()).unwrap_or(0), 0);
                for (i, a) in items.iter().enumerate() {
                    ffi::lua_pushlstring(state, a.as_ptr() as *const c_char, a.len());
                    ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
                }
            }
        })
    }
}

/// Lua 5.1's number to string ("%.14g").
pub fn lua_num_str(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    crate::resp::fmt_g(n, 14)
}

pub fn sha1hex(b: &[u8]) -> String {
    use sha1::Digest;
    let d = sha1::Sha1::digest(b);
    let mut s = String::with_capacity(40);
    for x in d.iter() {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn error_text(v: &Value) -> String {
    if let Value::Table(t) = v {
        if let Ok(Value::String(s)) = t.raw_get::<Value>("err") {
            return s.to_string_lossy();
        }
    }
    match v {
        Value::String(s) => s.to_string_lossy(),
        _ => "execution failure".into(),
    }
}

/// The reply line for an error a script raised (the handler made it a table).
fn error_reply(v: &Value, funcname: &str) -> String {
    let mut r = Vec::new();
    let Value::Table(t) = v else {
        let msg = match v {
            Value::String(s) => s.to_string_lossy(),
            _ => "execution failure".into(),
        };
        let mut s = String::new();
        let m: String = msg.chars().take(100).collect();
        s.push_str(&format!("Error running script {funcname}, {m}"));
        Reply {
            out: &mut r,
            resp3: false,
        }
        .error(&format!("ERR {s}"));
        return String::from_utf8_lossy(&r).into_owned();
    };
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        _ => "(null)".into(),
    };
    let source = t.raw_get::<Value>("source").ok();
    let line = t.raw_get::<Value>("line").ok();
    let mut full = msg;
    if let (Some(Value::String(src)), Some(line)) = (source, line) {
        let line = match line {
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => (n as i64).to_string(),
            _ => String::new(),
        };
        if !line.is_empty() {
            full = format!(
                "{full} script: {funcname}, on {}:{line}.",
                src.to_string_lossy()
            );
        }
    }
    Reply {
        out: &mut r,
        resp3: false,
    }
    .error(&full);
    String::from_utf8_lossy(&r).into_owned()
}

fn table_err(lua: &Lua, msg: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(msg)?)?;
    Ok(Value::Table(t))
}

/// `redis.call` / `redis.pcall`: the reply, or the error line to raise/return.
fn dispatch(lua: &Lua, st: &mut RunCtx<'_>, args: &[Value]) -> mlua::Result<Result<Value, String>> {
    // The command buffer is reused across calls (taken out while `st` is borrowed).
    let mut c = std::mem::take(&mut st.cmd);
    c.buf.clear();
    c.ranges.clear();
    let r = dispatch_with(lua, st, args, &mut c);
    st.cmd = c;
    r
}

fn dispatch_with(
    lua: &Lua,
    st: &mut RunCtx<'_>,
    args: &[Value],
    cmd_owned: &mut OwnedCmd,
) -> mlua::Result<Result<Value, String>> {
    // A script spending its time in redis.call may run few Lua instructions: serve the
    // other clients from here too once it is busy.
    if let Some(msg) = busy::on_call(st.node, st.wrote) {
        return Ok(Err(msg.to_string()));
    }
    if args.is_empty() {
        return Ok(Err(
            "ERR Please specify at least one argument for this redis lib call".to_string(),
        ));
    }
    cmd_owned.ranges.reserve(args.len());
    for a in args {
        let start = cmd_owned.buf.len();
        match a {
            Value::String(s) => cmd_owned.buf.extend_from_slice(&s.as_bytes()),
            Value::Integer(i) => {
                use std::io::Write as _;
                // Writing to a Vec cannot fail.
                let _ = write!(cmd_owned.buf, "{i}");
            }
            Value::Number(n) => cmd_owned.buf.extend_from_slice(lua_num_str(*n).as_bytes()),
            _ => {
                return Ok(Err(
                    "ERR Lua redis lib command arguments must be strings or integers".to_string(),
                ))
            }
        }
        cmd_owned.ranges.push((start, cmd_owned.buf.len()));
    }
    let cargs = cmd_owned.args();
    let Some(info) = cmd::lookup(cargs.get(0)) else {
        return Ok(Err(
            "ERR Unknown Redis command called from script".to_string()
        ));
    };
    let node = &mut *st.node;
    if (!node.settings.allow_restricted && info.flags & cmd::F_RESTRICTED != 0)
        || !cmd::in_version(node, info)
    {
        return Ok(Err(
            "ERR Unknown Redis command called from script".to_string()
        ));
    }
    let def = info.def;
    let argc = cargs.len() as i32;
    if (def.arity > 0 && argc != def.arity) || argc < -def.arity {
        return Ok(Err(
            "ERR Wrong number of args calling Redis command from script".to_string(),
        ));
    }
    if info.flags & F_NOSCRIPT != 0 {
        return Ok(Err(
            "ERR This Redis command is not allowed from script".to_string()
        ));
    }
    if node.acl.is_some() {
        if let Err(denied) = crate::acl::check(node, &st.sclient, info, &cargs) {
            crate::acl::log_denied(node, &st.sclient, &denied, "lua");
            return Ok(Err(denied.script_message().to_string()));
        }
    }
    let write = info.flags & F_WRITE != 0;
    if st.read_only && write {
        return Ok(Err(
            "ERR Write commands are not allowed from read-only scripts.".to_string(),
        ));
    }
    if write && !st.wrote && crate::replication::refuses_writes_from(node, &st.sclient) {
        return Ok(Err(
            "READONLY You can't write against a read only replica.".to_string()
        ));
    }
    if info.flags & F_DENYOOM != 0 && !st.allow_oom && !st.wrote {
        let max = node.settings.maxmemory;
        if max > 0 && !node.repl.is_replica() && node.used_memory() > max {
            return Ok(Err(
                "OOM command not allowed when used memory > 'maxmemory'.".to_string(),
            ));
        }
    }
    st.sclient.resp3.set(st.resp3);
    let dirty_before = node.dirty;
    st.out.clear();
    let mut out = std::mem::take(&mut st.out);
    cmd::call(node, &st.sclient, info, cargs, &mut out, true);
    if node.dirty != dirty_before {
        st.wrote = true;
    }
    let parsed = parse_reply(lua, &out);
    st.out = out;
    match parsed? {
        Some((Value::Table(t), true)) => {
            let msg = match t.raw_get::<Value>("err")? {
                Value::String(s) => s.to_string_lossy(),
                _ => String::new(),
            };
            Ok(Err(msg))
        }
        Some((v, _)) => Ok(Ok(v)),
        None => Ok(Err("ERR reply could not be parsed".into())),
    }
}

/// Redis reply (as produced for the script client) to Lua. Returns (value, is_error).
fn parse_reply(lua: &Lua, buf: &[u8]) -> mlua::Result<Option<(Value, bool)>> {
    let mut pos = 0;
    match parse_one(lua, buf, &mut pos, 0)? {
        Some(v) => Ok(Some(v)),
        None => Ok(None),
    }
}

fn read_line<'b>(buf: &'b [u8], pos: &mut usize) -> Option<&'b [u8]> {
    let start = *pos + 1;
    let rel = buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some(&buf[start..start + rel])
}

fn parse_one(
    lua: &Lua,
    buf: &[u8],
    pos: &mut usize,
    depth: usize,
) -> mlua::Result<Option<(Value, bool)>> {
    deep(|| parse_one_inner(lua, buf, pos, depth))
}

fn parse_one_inner(
    lua: &Lua,
    buf: &[u8],
    pos: &mut usize,
    depth: usize,
) -> mlua::Result<Option<(Value, bool)>> {
    let Some(&t) = buf.get(*pos) else {
        return Ok(None);
    };
    let Some(line) = read_line(buf, pos) else {
        return Ok(None);
    };
    let num = || {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
    };
    let v = match t {
        b'+' => {
            let tb = lua.create_table()?;
            tb.raw_set("ok", lua.create_string(line)?)?;
            Value::Table(tb)
        }
        b'-' => {
            let tb = lua.create_table()?;
            tb.raw_set("err", lua.create_string(line)?)?;
            return Ok(Some((Value::Table(tb), true)));
        }
        b':' => match num() {
            Some(n) => Value::Integer(n as _),
            None => return Ok(None),
        },
        b'_' => Value::Nil,
        b'#' => Value::Boolean(line == b"t"),
        b',' => {
            let tb = lua.create_table()?;
            let s = String::from_utf8_lossy(line);
            let d: f64 = match s.as_ref() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                other => other.parse().unwrap_or(f64::NAN),
            };
            tb.raw_set("double", d)?;
            Value::Table(tb)
        }
        b'(' => {
            let tb = lua.create_table()?;
            tb.raw_set("big_number", lua.create_string(line)?)?;
            Value::Table(tb)
        }
        b'$' | b'=' | b'!' => {
            let Some(n) = num() else { return Ok(None) };
            if n < 0 {
                Value::Boolean(false)
            } else {
                let n = n as usize;
                let Some(data) = buf.get(*pos..*pos + n) else {
                    return Ok(None);
                };
                *pos += n + 2;
                if t == b'=' {
                    let tb = lua.create_table()?;
                    let inner = lua.create_table()?;
                    let (fmt, s) = if data.len() >= 4 {
                        (&data[..3], &data[4..])
                    } else {
                        (&b""[..], data)
                    };
                    inner.raw_set("format", lua.create_string(fmt)?)?;
                    inner.raw_set("string", lua.create_string(s)?)?;
                    tb.raw_set("verbatim_string", inner)?;
                    Value::Table(tb)
                } else if t == b'!' {
                    let tb = lua.create_table()?;
                    tb.raw_set("err", lua.create_string(data)?)?;
                    return Ok(Some((Value::Table(tb), true)));
                } else {
                    Value::String(lua.create_string(data)?)
                }
            }
        }
        b'*' | b'~' | b'%' | b'>' => {
            let Some(n) = num() else { return Ok(None) };
            if n < 0 {
                return Ok(Some((Value::Boolean(false), false)));
            }
            if depth > 1000 {
                return Ok(None);
            }
            let tb = lua.create_table()?;
            match t {
                b'%' => {
                    for _ in 0..n {
                        let Some((k, _)) = parse_one(lua, buf, pos, depth + 1)? else {
                            return Ok(None);
                        };
                        let Some((v, _)) = parse_one(lua, buf, pos, depth + 1)? else {
                            return Ok(None);
                        };
                        tb.raw_set(k, v)?;
                    }
                    let w = lua.create_table()?;
                    w.raw_set("map", tb)?;
                    Value::Table(w)
                }
                b'~' => {
                    for _ in 0..n {
                        let Some((k, _)) = parse_one(lua, buf, pos, depth + 1)? else {
                            return Ok(None);
                        };
                        tb.raw_set(k, true)?;
                    }
                    let w = lua.create_table()?;
                    w.raw_set("set", tb)?;
                    Value::Table(w)
                }
                _ => {
                    for i in 0..n {
                        let Some((v, _)) = parse_one(lua, buf, pos, depth + 1)? else {
                            return Ok(None);
                        };
                        tb.raw_set(i + 1, v)?;
                    }
                    Value::Table(tb)
                }
            }
        }
        _ => return Ok(None),
    };
    Ok(Some((v, false)))
}

/// Recursion in the converters and decoders is bounded (depth 1000, as Redis's limits) but
/// debug-build frames are large: grow the stack on the heap when it runs low.
pub(crate) fn deep<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}

/// Lua value to a reply, following Redis 7.0's `luaReplyToRedisReply`.
fn to_resp(v: &Value, out: &mut Vec<u8>, script_resp3: bool, resp3: bool, depth: usize) {
    deep(|| to_resp_inner(v, out, script_resp3, resp3, depth))
}

fn to_resp_inner(v: &Value, out: &mut Vec<u8>, script_resp3: bool, resp3: bool, depth: usize) {
    let mut r = Reply { out, resp3 };
    match v {
        Value::String(s) => r.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if !script_resp3 {
                if *b {
                    r.int(1)
                } else {
                    r.null()
                }
            } else {
                r.boolean(*b)
            }
        }
        Value::Integer(i) => r.int(*i),
        Value::Number(n) => r.int(trunc_i64(*n)),
        Value::Table(t) => {
            if depth > 1000 {
                r.error("ERR reached lua stack limit");
                return;
            }
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                // "-%s" formatting: never gets an "ERR " prefix added.
                let msg = e.to_string_lossy();
                r.error(&msg);
                return;
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
                let s: String = s
                    .to_string_lossy()
                    .chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                    .collect();
                r.simple(&s);
                return;
            }
            if let Ok(d) = t.raw_get::<Value>("double") {
                let d = match d {
                    Value::Number(n) => Some(n),
                    Value::Integer(i) => Some(i as f64),
                    _ => None,
                };
                if let Some(d) = d {
                    if d.is_nan() {
                        // printf's rendering of the NaN x86 produces for 0/0.
                        let s: &[u8] = if d.is_sign_negative() {
                            b"-nan"
                        } else {
                            b"nan"
                        };
                        if resp3 {
                            r.out.push(b',');
                            r.out.extend_from_slice(s);
                            r.out.extend_from_slice(b"\r\n");
                        } else {
                            r.bulk(s);
                        }
                    } else {
                        r.double(d);
                    }
                    return;
                }
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
                let b = s.as_bytes();
                if resp3 {
                    r.out.push(b'(');
                    r.out.extend_from_slice(&b);
                    r.out.extend_from_slice(b"\r\n");
                } else {
                    r.bulk(&b);
                }
                return;
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
                let pairs: Vec<(Value, Value)> =
                    m.pairs::<Value, Value>().filter_map(|p| p.ok()).collect();
                r.map(pairs.len());
                for (k, v) in &pairs {
                    to_resp(k, out, script_resp3, resp3, depth + 1);
                    to_resp(v, out, script_resp3, resp3, depth + 1);
                }
                return;
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("set") {
                let keys: Vec<Value> = m
                    .pairs::<Value, Value>()
                    .filter_map(|p| p.ok().map(|(k, _)| k))
                    .collect();
                r.set(keys.len());
                for k in &keys {
                    to_resp(k, out, script_resp3, resp3, depth + 1);
                }
                return;
            }
            let mut items = Vec::new();
            let mut i = 1;
            loop {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(v),
                }
                i += 1;
            }
            r.array(items.len());
            for it in &items {
                to_resp(it, out, script_resp3, resp3, depth + 1);
            }
        }
        _ => r.null(),
    }
}

/// C's `(long long)` cast of a double; out of range (undefined in C) gives what x86's
/// cvttsd2si gives, the "integer indefinite" value, as redis-server on x86-64 does.
fn trunc_i64(n: f64) -> i64 {
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// Double formatting used by `{double=...}` replies.
pub fn double_str(d: f64) -> String {
    fmt_double(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_flags_and_errors() {
        let (f, body) = eval_shebang(b"return 1").unwrap_or_default();
        assert!(f.compat);
        assert_eq!(body, b"return 1");
        let (f, body) =
            eval_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap_or_default();
        assert!(!f.compat && f.no_writes && f.allow_oom && !f.allow_stale);
        // The shebang line is dropped but its newline kept: line numbers do not move.
        assert_eq!(body, b"\nreturn 1");
        assert_eq!(
            eval_shebang(b"#!lua flags=bogus\n").map(|_| ()),
            Err("Unexpected flag in script shebang: bogus".to_string())
        );
        assert_eq!(
            eval_shebang(b"#!py\n").map(|_| ()),
            Err("Unexpected engine in script shebang: #!py".to_string())
        );
        assert_eq!(
            library_shebang(b"#!lua name=lib_1\nx").map(|(n, _)| n),
            Ok("lib_1".to_string())
        );
        assert!(library_shebang(b"#!lua\nx").is_err());
        assert!(library_shebang(b"return 1").is_err());
    }

    #[test]
    fn numbers_and_sha() {
        assert_eq!(lua_num_str(0.1), "0.1");
        assert_eq!(lua_num_str(1e100), "1e+100");
        assert_eq!(lua_num_str(3.0), "3");
        assert_eq!(trunc_i64(3.99), 3);
        assert_eq!(trunc_i64(-3.99), -3);
        assert_eq!(trunc_i64(f64::INFINITY), i64::MIN);
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn scripts_run_and_convert_replies() {
        let mut sc = Scripting::new().expect("lua state");
        let sha = sc.load_script(b"return {1, 'a', {ok='fine'}, 2.9, false}");
        assert_eq!(sha.as_ref().map(|s| s.len()), Ok(40));
        assert!(sc.load_script(b"return +").is_err_and(
            |e| e.starts_with("ERR Error compiling script (new function): user_script:1:")
        ));
        assert_eq!(
            sc.load_library(
                b"#!lua name=l\nredis.register_function('f', function() return 1 end)",
                false
            ),
            Ok("l".to_string())
        );
        assert!(sc
            .load_library(
                b"#!lua name=l\nredis.register_function('f', function() return 1 end)",
                false
            )
            .is_err());
        assert!(sc.delete_library("l"));
        assert!(!sc.functions.contains_key("f"));
    }
}
