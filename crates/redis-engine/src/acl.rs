//! Access control lists as Redis 7.0 defines them: users with passwords, command
//! permissions (commands, `cmd|sub`, `@category`), key patterns (`~`, `%R~`, `%W~`)
//! and pub/sub channel patterns (`&`).
//!
//! A node without ACL users (`Node::acl == None`) behaves as before: a single
//! `default` user with `requirepass`. Users arrive from the control plane
//! (ElastiCache user groups, `Control::SetUsers`) or from `ACL SETUSER` when
//! restricted commands are allowed.

use std::collections::HashSet;

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::cmd::{
    self, CmdInfo, Error, F_ADMIN, F_BLOCKING, F_FAST, F_PUBSUB, F_READONLY, F_WRITE,
};
use crate::node::{Client, Node};
use crate::resp::Args;

/// ACL categories in Redis 7.0's order (`ACL CAT`).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Commands whose first argument is a subcommand (`client|kill`): Redis names
/// them with it in NOPERM errors and gives subcommands their own categories.
const CONTAINERS: &[&str] = &[
    "acl",
    "client",
    "cluster",
    "command",
    "config",
    "function",
    "latency",
    "memory",
    "module",
    "object",
    "pubsub",
    "script",
    "slowlog",
    "xgroup",
    "xinfo",
    "commandlog",
];

/// Subcommands whose categories differ from their container's in Redis 7.0
/// (the dangerous/admin ones; the rest inherit the container's categories).
const SUB_CATEGORIES: &[(&str, &str)] = &[
    ("client|kill", "@admin @slow @dangerous @connection"),
    ("client|pause", "@admin @slow @dangerous @connection"),
    ("client|unpause", "@admin @slow @dangerous @connection"),
    ("client|no-evict", "@admin @slow @dangerous @connection"),
    ("client|list", "@admin @slow @dangerous @connection"),
    ("client|tracking", "@slow @connection"),
    ("config|get", "@admin @slow @dangerous"),
    ("config|set", "@admin @slow @dangerous"),
    ("config|resetstat", "@admin @slow @dangerous"),
    ("config|rewrite", "@admin @slow @dangerous"),
    ("acl|whoami", "@slow"),
    ("acl|cat", "@slow"),
    ("acl|genpass", "@slow"),
    ("acl|help", "@slow"),
    ("acl|setuser", "@admin @slow @dangerous"),
    ("acl|deluser", "@admin @slow @dangerous"),
    ("acl|getuser", "@admin @slow @dangerous"),
    ("acl|list", "@admin @slow @dangerous"),
    ("acl|users", "@admin @slow @dangerous"),
    ("acl|log", "@admin @slow @dangerous"),
    ("acl|load", "@admin @slow @dangerous"),
    ("acl|save", "@admin @slow @dangerous"),
    ("acl|dryrun", "@admin @slow @dangerous"),
    ("object|freq", "@keyspace @read @slow"),
    ("memory|usage", "@read @slow"),
    ("memory|stats", "@slow"),
    ("memory|doctor", "@slow"),
    ("memory|purge", "@slow"),
    ("command|docs", "@slow @connection"),
    ("command|info", "@slow @connection"),
    ("command|count", "@slow @connection"),
    ("command|list", "@slow @connection"),
    ("command|getkeys", "@slow @connection"),
];

pub static COMMANDS: &[cmd::CmdDef] = &[cmd::CmdDef {
    name: "acl",
    arity: -2,
    flags: "noscript loading stale",
    acl: "@slow",
    keys: cmd::Keys::None,
    handler: acl_command,
}];

const KEY_READ: u8 = 1;
const KEY_WRITE: u8 = 2;

fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES.iter().position(|c| *c == name).map(|i| 1 << i)
}

fn categories_of_str(s: &str) -> u32 {
    s.split_whitespace()
        .filter_map(|w| w.strip_prefix('@'))
        .filter_map(category_bit)
        .fold(0, |a, b| a | b)
}

/// A command's categories: the table's `acl` field plus those Redis derives from
/// its flags (`setImplicitACLCategories`).
fn command_categories(info: &CmdInfo) -> u32 {
    let mut c = categories_of_str(info.def.acl);
    let bit = |n: &str| category_bit(n).unwrap_or(0);
    if info.flags & F_WRITE != 0 {
        c |= bit("write");
    }
    if info.flags & F_READONLY != 0 && c & bit("scripting") == 0 {
        c |= bit("read");
    }
    if info.flags & F_ADMIN != 0 {
        c |= bit("admin") | bit("dangerous");
    }
    if info.flags & F_PUBSUB != 0 {
        c |= bit("pubsub");
    }
    if info.flags & F_FAST != 0 {
        c |= bit("fast");
    }
    if info.flags & F_BLOCKING != 0 {
        c |= bit("blocking");
    }
    if c & bit("fast") == 0 {
        c |= bit("slow");
    }
    c
}

/// Per command index: its categories (built once).
fn category_table() -> &'static Vec<u32> {
    static T: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let t = cmd::table();
        let mut v = vec![0; t.len()];
        for info in t.values() {
            if let Some(slot) = v.get_mut(info.idx) {
                *slot = command_categories(info);
            }
        }
        v
    })
}

/// Why a rule was refused; rendered as Redis's `ACL SETUSER` error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Syntax error")]
    Syntax,
    #[error("Unknown command or category name in ACL")]
    Unknown,
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArgOfSub,
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    KeyAfterAll,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    ChannelAfterAll,
}

/// One user.
#[derive(Debug, Clone)]
pub struct User {
    pub name: Vec<u8>,
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 of each password, in the order added.
    pub passwords: Vec<[u8; 32]>,
    /// ElastiCache IAM authentication: `AUTH user <token>` is checked by the
    /// node's IAM verifier instead of the password list.
    pub iam: bool,
    /// Allowed command indexes (`cmd::CmdInfo::idx`).
    allowed: Vec<bool>,
    /// `+@all` was applied last among the wholesale rules.
    all_commands: bool,
    /// `cmd|sub` (or `cmd|first-arg`) allowed although `cmd` is not.
    allowed_subs: HashSet<String>,
    /// `cmd|sub` refused although `cmd` is allowed.
    denied_subs: HashSet<String>,
    /// Key patterns with their permissions (read, write).
    keys: Vec<(Vec<u8>, u8)>,
    all_keys: bool,
    channels: Vec<Vec<u8>>,
    all_channels: bool,
    /// The command rules as applied, for `ACL LIST` / `ACL GETUSER`.
    command_rules: Vec<String>,
}

impl User {
    /// A new user as `ACL SETUSER name` creates it: off, no passwords, no
    /// commands, no keys, no channels (Redis 7.0's `acl-pubsub-default`).
    pub fn new(name: &[u8]) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            iam: false,
            allowed: vec![false; cmd::table().len()],
            all_commands: false,
            allowed_subs: HashSet::new(),
            denied_subs: HashSet::new(),
            keys: Vec::new(),
            all_keys: false,
            channels: Vec::new(),
            all_channels: false,
            command_rules: Vec::new(),
        }
    }

    /// The built-in `default` user: `on nopass ~* &* +@all`.
    pub fn default_user() -> User {
        let mut u = User::new(b"default");
        for r in ["on", "nopass", "~*", "&*", "+@all"] {
            let _ = u.apply(r.as_bytes());
        }
        u
    }

    /// Nothing to check for this user (the common case, kept cheap).
    fn unrestricted(&self) -> bool {
        self.all_commands && self.denied_subs.is_empty() && self.all_keys && self.all_channels
    }

    /// Apply one ACL rule.
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"allkeys" => self.apply(b"~*")?,
            b"resetkeys" => {
                self.keys.clear();
                self.all_keys = false;
            }
            b"allchannels" => self.apply(b"&*")?,
            b"resetchannels" => {
                self.channels.clear();
                self.all_channels = false;
            }
            b"allcommands" => self.apply(b"+@all")?,
            b"nocommands" => self.apply(b"-@all")?,
            b"sanitize-payload" | b"skip-sanitize-payload" => {}
            b"reset" => {
                let name = std::mem::take(&mut self.name);
                *self = User::new(&name);
            }
            _ => return self.apply_prefixed(rule),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let (&first, rest) = rule.split_first().ok_or(RuleError::Syntax)?;
        match first {
            b'>' => {
                let h = sha256(rest);
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            b'<' => {
                let h = sha256(rest);
                self.passwords.retain(|p| *p != h);
            }
            b'#' | b'!' => {
                let h = parse_hash(rest).ok_or(RuleError::BadHash)?;
                if first == b'#' {
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                } else {
                    self.passwords.retain(|p| *p != h);
                }
            }
            b'~' => self.add_key_pattern(rest, KEY_READ | KEY_WRITE)?,
            b'%' => {
                let tilde = rest
                    .iter()
                    .position(|&c| c == b'~')
                    .ok_or(RuleError::Syntax)?;
                let mut perm = 0;
                for &c in &rest[..tilde] {
                    perm |= match c.to_ascii_uppercase() {
                        b'R' => KEY_READ,
                        b'W' => KEY_WRITE,
                        _ => return Err(RuleError::Syntax),
                    };
                }
                if perm == 0 {
                    return Err(RuleError::Syntax);
                }
                self.add_key_pattern(&rest[tilde + 1..], perm)?;
            }
            b'&' => {
                if self.all_channels {
                    return Err(RuleError::ChannelAfterAll);
                }
                if rest == b"*" {
                    self.all_channels = true;
                    self.channels.clear();
                } else if !self.channels.iter().any(|c| c == rest) {
                    self.channels.push(rest.to_vec());
                }
            }
            b'+' | b'-' => self.apply_command_rule(first == b'+', rest, false)?,
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, pat: &[u8], perm: u8) -> Result<(), RuleError> {
        if self.all_keys && perm == KEY_READ | KEY_WRITE {
            return Err(RuleError::KeyAfterAll);
        }
        if pat == b"*" && perm == KEY_READ | KEY_WRITE {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|(p, _)| p == pat) {
            Some((_, f)) => *f |= perm,
            None => self.keys.push((pat.to_vec(), perm)),
        }
        Ok(())
    }

    /// `+cmd`, `-cmd`, `+@cat`, `-@cat`, `+cmd|sub`, `-cmd|sub`. `lenient` skips
    /// names this engine does not know (so access strings written for a newer
    /// engine still apply what they can).
    fn apply_command_rule(
        &mut self,
        allow: bool,
        name: &[u8],
        lenient: bool,
    ) -> Result<(), RuleError> {
        let name = std::str::from_utf8(name)
            .map_err(|_| RuleError::Unknown)?
            .to_ascii_lowercase();
        let sign = if allow { '+' } else { '-' };
        if let Some(cat) = name.strip_prefix('@') {
            if cat == "all" {
                self.allowed.iter_mut().for_each(|b| *b = allow);
                self.all_commands = allow;
                self.allowed_subs.clear();
                self.denied_subs.clear();
                self.command_rules.clear();
                return Ok(());
            }
            let bit = category_bit(cat).ok_or(RuleError::Unknown)?;
            let cats = category_table();
            for info in cmd::table().values() {
                if cats.get(info.idx).is_some_and(|c| c & bit != 0) {
                    self.set_command(info.idx, info.def.name, allow);
                }
            }
            if !allow {
                self.all_commands = false;
            }
            self.command_rules.push(format!("{sign}@{cat}"));
            return Ok(());
        }
        if let Some((cmd_name, sub)) = name.split_once('|') {
            if sub.is_empty() || sub.contains('|') {
                return Err(if sub.contains('|') {
                    RuleError::FirstArgOfSub
                } else {
                    RuleError::Syntax
                });
            }
            let Some(info) = cmd::lookup(cmd_name.as_bytes()) else {
                return if lenient {
                    Ok(())
                } else {
                    Err(RuleError::Unknown)
                };
            };
            let full = format!("{}|{sub}", info.def.name);
            if allow {
                self.denied_subs.remove(&full);
                if !self.allowed.get(info.idx).copied().unwrap_or(false) {
                    self.allowed_subs.insert(full.clone());
                }
            } else {
                self.allowed_subs.remove(&full);
                if self.allowed.get(info.idx).copied().unwrap_or(false) {
                    self.denied_subs.insert(full.clone());
                }
                self.all_commands = false;
            }
            self.command_rules.retain(|r| r[1..] != full);
            self.command_rules.push(format!("{sign}{full}"));
            return Ok(());
        }
        let Some(info) = cmd::lookup(name.as_bytes()) else {
            return if lenient {
                Ok(())
            } else {
                Err(RuleError::Unknown)
            };
        };
        self.set_command(info.idx, info.def.name, allow);
        if !allow {
            self.all_commands = false;
        }
        let prefix = format!("{}|", info.def.name);
        self.command_rules
            .retain(|r| r[1..] != *info.def.name && !r[1..].starts_with(&prefix));
        self.command_rules.push(format!("{sign}{}", info.def.name));
        Ok(())
    }

    fn set_command(&mut self, idx: usize, name: &str, allow: bool) {
        if let Some(b) = self.allowed.get_mut(idx) {
            *b = allow;
        }
        let prefix = format!("{name}|");
        self.allowed_subs.retain(|s| !s.starts_with(&prefix));
        self.denied_subs.retain(|s| !s.starts_with(&prefix));
    }

    /// Apply a whole access string (space-separated rules), as ElastiCache does.
    /// Unknown command names are skipped rather than refused.
    pub fn apply_access_string(&mut self, s: &str) -> Result<(), (String, RuleError)> {
        for rule in s.split_whitespace() {
            let b = rule.as_bytes();
            let r = match b.first() {
                Some(b'+' | b'-') if !b[1..].starts_with(b"@") => {
                    self.apply_command_rule(b[0] == b'+', &b[1..], true)
                }
                _ => self.apply(b),
            };
            r.map_err(|e| (rule.to_string(), e))?;
        }
        Ok(())
    }

    pub fn check_password(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = sha256(pass);
        self.passwords.iter().any(|p| p == &h)
    }

    /// `ACL LIST` line (without the leading `user <name> `).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = vec![if self.enabled { "on" } else { "off" }.into()];
        if self.nopass {
            parts.push("nopass".into());
        }
        for p in &self.passwords {
            parts.push(format!("#{}", hex(p)));
        }
        let keys = self.keys_rule();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if !self.all_channels {
            parts.push("resetchannels".into());
        }
        let channels = self.channels_rule();
        if !channels.is_empty() {
            parts.push(channels);
        }
        parts.push(self.commands_rule());
        parts.join(" ")
    }

    /// The key patterns as rules (`~*`, `%R~p ~q`; empty: no keys).
    fn keys_rule(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let rules: Vec<String> = self
            .keys
            .iter()
            .map(|(p, f)| {
                let p = String::from_utf8_lossy(p);
                match *f {
                    KEY_READ => format!("%R~{p}"),
                    KEY_WRITE => format!("%W~{p}"),
                    _ => format!("~{p}"),
                }
            })
            .collect();
        rules.join(" ")
    }

    /// The channel patterns as rules (`&*`, `&a &b`; empty: no channels).
    fn channels_rule(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let rules: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        rules.join(" ")
    }

    /// The command rules (`+@all`, `-@all +get ...`).
    fn commands_rule(&self) -> String {
        let base = if self.all_commands
            || self.command_rules.is_empty() && self.allowed.iter().all(|b| *b)
        {
            "+@all"
        } else {
            "-@all"
        };
        let mut cmds = vec![base.to_string()];
        cmds.extend(self.command_rules.iter().cloned());
        cmds.join(" ")
    }

    fn key_allowed(&self, key: &[u8], need: u8) -> bool {
        self.all_keys
            || self
                .keys
                .iter()
                .any(|(p, f)| f & need == need && cmd::glob_match(p, key, false))
    }

    fn channel_allowed(&self, ch: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == ch
                } else {
                    cmd::glob_match(p, ch, false)
                }
            })
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b);
    h.finalize().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_hash(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64
        || !s
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (s[2 * i] as char).to_digit(16)?;
        let lo = (s[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// A user as the control plane sends it: a name and its full rule string
/// (`on >pass ~app:* +@read`), or IAM authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub name: String,
    pub rules: String,
    pub iam: bool,
}

/// Checks an ElastiCache IAM auth token for a user (`AUTH user <token>`):
/// called with the user name and the token.
#[derive(Clone)]
pub struct IamVerifier(pub std::sync::Arc<dyn Fn(&str, &str) -> bool + Send + Sync>);

impl std::fmt::Debug for IamVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IamVerifier")
    }
}

/// A node's users.
#[derive(Clone, Default)]
pub struct Acl {
    pub users: IndexMap<Vec<u8>, User>,
    pub iam: Option<IamVerifier>,
}

impl std::fmt::Debug for Acl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acl")
            .field("users", &self.users.len())
            .finish()
    }
}

impl Acl {
    /// Users from the control plane. A group without a `default` user still
    /// gets one, disabled (ElastiCache requires one; Redis always has one).
    pub fn from_specs(specs: &[UserSpec]) -> Acl {
        let mut acl = Acl::default();
        for s in specs {
            let mut u = User::new(s.name.as_bytes());
            if let Err((rule, e)) = u.apply_access_string(&s.rules) {
                tracing::warn!(user = %s.name, rule = %rule, error = %e, "ACL rule skipped");
            }
            u.iam = s.iam;
            acl.users.insert(u.name.clone(), u);
        }
        acl.users
            .entry(b"default".to_vec())
            .or_insert_with(|| User::new(b"default"));
        acl
    }

    /// The `default` user authenticates new connections by itself.
    pub fn default_autologin(&self) -> bool {
        self.users
            .get(b"default".as_slice())
            .is_some_and(|u| u.enabled && u.nopass && !u.iam)
    }
}

/// The user elastilite's own connections to its nodes log in as (replication
/// links, snapshots, persistence), whatever users the node has. Its password is
/// random per process and never leaves it, like ElastiCache's internal links.
pub const INTERNAL_USER: &str = "elastilite-internal";

pub fn internal_password() -> &'static str {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut out = String::new();
        for i in 0..4u64 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            out.push_str(&format!("{:016x}", h.finish()));
        }
        out
    })
}

fn is_internal(user: &[u8]) -> bool {
    user == INTERNAL_USER.as_bytes()
}

/// Whether unauthenticated connections are refused (`NOAUTH`).
pub fn auth_required(node: &Node) -> bool {
    match &node.acl {
        Some(acl) => !acl.default_autologin(),
        None => node.settings.requirepass.is_some(),
    }
}

/// The error AUTH/HELLO give for a bad user or password.
pub fn wrongpass() -> Error {
    Error::Raw("WRONGPASS invalid username-password pair or user is disabled.".into())
}

/// Check a username/password pair; on success the connection becomes that user.
pub fn authenticate(
    node: &mut Node,
    client: &Client,
    user: &[u8],
    pass: &[u8],
) -> Result<(), Error> {
    let r = check_credentials(node, user, pass);
    match r {
        Ok(()) => {
            *client.user.borrow_mut() = user.to_vec();
            client.authed.set(true);
        }
        // The control plane's own connections are not the user's business.
        Err(_) if is_internal(user) => {}
        Err(_) => log_entry(
            node,
            client,
            "auth",
            "toplevel",
            b"AUTH".to_vec(),
            user.to_vec(),
        ),
    }
    r
}

fn check_credentials(node: &Node, user: &[u8], pass: &[u8]) -> Result<(), Error> {
    if is_internal(user) {
        if pass != internal_password().as_bytes() {
            return Err(wrongpass());
        }
        return Ok(());
    }
    match &node.acl {
        None => {
            if user != b"default" {
                return Err(wrongpass());
            }
            match &node.settings.requirepass {
                Some(p) if p.as_slice() != pass => return Err(wrongpass()),
                _ => {}
            }
        }
        Some(acl) => {
            let u = acl
                .users
                .get(user)
                .filter(|u| u.enabled)
                .ok_or_else(wrongpass)?;
            let ok = if u.iam {
                let verify = |v: &IamVerifier| match (
                    std::str::from_utf8(user),
                    std::str::from_utf8(pass),
                ) {
                    (Ok(name), Ok(token)) => (v.0)(name, token),
                    _ => false,
                };
                acl.iam.as_ref().is_some_and(verify)
            } else {
                u.check_password(pass)
            };
            if !ok {
                return Err(wrongpass());
            }
        }
    }
    Ok(())
}

/// `acllog-max-len`'s default; ElastiCache does not expose it.
const ACL_LOG_MAX_LEN: usize = 128;
/// Redis groups repeats of one denial into one entry for this long (ACL_LOG_GROUPING_MAX_TIME_DELTA).
const ACL_LOG_GROUPING_MS: u64 = 60_000;

/// One `ACL LOG` entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    count: u64,
    reason: &'static str,
    context: &'static str,
    object: Vec<u8>,
    username: Vec<u8>,
    /// Unix ms of the latest occurrence.
    at_ms: u64,
    client_info: String,
}

/// A command refused by the ACL: logged (`context`: toplevel, multi or lua) as Redis logs it.
pub fn log_denied(node: &mut Node, client: &Client, denied: &Denied, context: &'static str) {
    let (reason, object) = denied.log_fields();
    let user = client.user.borrow().clone();
    log_entry(node, client, reason, context, object, user);
}

fn log_entry(
    node: &mut Node,
    client: &Client,
    reason: &'static str,
    context: &'static str,
    object: Vec<u8>,
    username: Vec<u8>,
) {
    let now = crate::db::now_ms();
    let client_info = cmd::server::client_line(node, client);
    let log = &mut node.acl_log;
    // A repeat within the grouping window updates its entry and moves it to the front.
    let same = log.iter().position(|e| {
        e.reason == reason
            && e.context == context
            && e.object == object
            && e.username == username
            && now.saturating_sub(e.at_ms) <= ACL_LOG_GROUPING_MS
    });
    let entry = match same.and_then(|i| log.remove(i)) {
        Some(mut e) => {
            e.count += 1;
            e.at_ms = now;
            e.client_info = client_info;
            e
        }
        None => LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            at_ms: now,
            client_info,
        },
    };
    log.push_front(entry);
    log.truncate(ACL_LOG_MAX_LEN);
}

/// Why a command was refused (with the key or channel that was).
pub enum Denied {
    Command(String),
    Key(Vec<u8>),
    Channel(Vec<u8>),
}

impl Denied {
    /// The wording Redis 7.0 uses when a script's `redis.call` is denied (script.c).
    pub fn script_message(&self) -> &'static str {
        match self {
            Denied::Command(_) => {
                "ERR The user executing the script can't run this command or subcommand"
            }
            Denied::Key(_) => {
                "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => {
                "ERR The user executing the script can't publish to the channel mentioned in the command"
            }
        }
    }

    pub fn message(&self) -> String {
        match self {
            Denied::Command(name) => format!("NOPERM this user has no permissions to run the '{name}' command"),
            Denied::Key(_) => "NOPERM this user has no permissions to access one of the keys used as arguments".into(),
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments".into()
            }
        }
    }

    /// `ACL DRYRUN`'s answer.
    fn dryrun_message(&self) -> String {
        match self {
            Denied::Command(name) => {
                format!("This user has no permissions to run the '{name}' command")
            }
            Denied::Key(k) => format!(
                "This user has no permissions to access the '{}' key",
                String::from_utf8_lossy(k)
            ),
            Denied::Channel(c) => format!(
                "This user has no permissions to access the '{}' channel",
                String::from_utf8_lossy(c)
            ),
        }
    }

    /// ACL LOG's `reason` and `object`.
    fn log_fields(&self) -> (&'static str, Vec<u8>) {
        match self {
            Denied::Command(name) => ("command", name.as_bytes().to_vec()),
            Denied::Key(k) => ("key", k.clone()),
            Denied::Channel(c) => ("channel", c.clone()),
        }
    }
}

/// The permission check `execute()` runs when the node has ACL users.
pub fn check(node: &Node, client: &Client, info: &CmdInfo, args: &Args<'_>) -> Result<(), Denied> {
    let Some(acl) = &node.acl else { return Ok(()) };
    let user = client.user.borrow();
    if is_internal(&user) {
        return Ok(());
    }
    let Some(u) = acl.users.get(user.as_slice()) else {
        // The user was deleted; its connections are being closed.
        return Err(Denied::Command(info.def.name.to_string()));
    };
    check_user(u, info, args)
}

/// Whether user `u` may run this command on these keys and channels.
fn check_user(u: &User, info: &CmdInfo, args: &Args<'_>) -> Result<(), Denied> {
    if u.unrestricted() {
        return Ok(());
    }
    let name = info.def.name;
    let container = CONTAINERS.contains(&name);
    let full = if args.len() > 1 && (container || !u.allowed_subs.is_empty()) {
        Some(format!(
            "{name}|{}",
            String::from_utf8_lossy(args.get(1)).to_ascii_lowercase()
        ))
    } else {
        None
    };
    let display = || match (&full, container) {
        (Some(f), true) => f.clone(),
        _ => name.to_string(),
    };
    let mut allowed = u.allowed.get(info.idx).copied().unwrap_or(false);
    if let Some(f) = &full {
        if allowed && u.denied_subs.contains(f) {
            return Err(Denied::Command(display()));
        }
        if !allowed && u.allowed_subs.contains(f) {
            allowed = true;
        }
        // A subcommand more dangerous than its container is refused unless one
        // of the user's rules allowed it explicitly or by category.
        if allowed && container && !u.all_commands && !u.allowed_subs.contains(f) {
            if let Some((_, cats)) = SUB_CATEGORIES.iter().find(|(s, _)| s == f) {
                let sub_cats = categories_of_str(cats);
                let granted = u.command_rules.iter().any(|r| {
                    r == &format!("+{name}")
                        || r.strip_prefix("+@")
                            .and_then(category_bit)
                            .is_some_and(|b| b & sub_cats != 0)
                });
                if !granted {
                    return Err(Denied::Command(display()));
                }
            }
        }
    }
    if !allowed {
        return Err(Denied::Command(display()));
    }
    if !u.all_keys {
        let need = if info.flags & F_WRITE != 0 {
            KEY_WRITE
        } else {
            KEY_READ
        };
        for i in cmd::key_indexes(info.def, args) {
            if !u.key_allowed(args.get(i), need) {
                return Err(Denied::Key(args.get(i).to_vec()));
            }
        }
    }
    if !u.all_channels {
        let (range, is_pattern) = match name {
            "publish" | "spublish" => (1..2.min(args.len()), false),
            "subscribe" | "ssubscribe" => (1..args.len(), false),
            "psubscribe" => (1..args.len(), true),
            _ => (0..0, false),
        };
        for i in range {
            if !u.channel_allowed(args.get(i), is_pattern) {
                return Err(Denied::Channel(args.get(i).to_vec()));
            }
        }
    }
    Ok(())
}

/// Install a new set of users (None: back to `requirepass` only). Connections
/// of users that are gone or disabled are closed; the others keep going with
/// their user's new permissions, as on ElastiCache.
pub fn set_users(node: &mut Node, acl: Option<Acl>) {
    node.acl = acl.map(Box::new);
    for c in node.clients.values() {
        let user = c.user.borrow();
        let keep = is_internal(&user)
            || match &node.acl {
                None => user.as_slice() == b"default",
                Some(acl) => acl.users.get(user.as_slice()).is_some_and(|u| u.enabled),
            };
        if !keep {
            c.killed.set(true);
            c.notify.notify_one();
        }
    }
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

/// `ACL` and its subcommands. ElastiCache refuses the ones that change users
/// (SETUSER, DELUSER, LOAD, SAVE): here they need `--allow-restricted-commands`.
pub fn acl_command(ctx: &mut cmd::Ctx<'_>) -> cmd::CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    let restricted = matches!(sub.as_str(), "setuser" | "deluser" | "load" | "save");
    if restricted && !ctx.node.settings.allow_restricted {
        return Err(ctx.unknown_sub());
    }
    // Redis 7.0's arity of each subcommand (negative: at least).
    let arity = match sub.as_str() {
        "getuser" => 3,
        "help" | "list" | "load" | "save" | "users" | "whoami" => 2,
        "cat" | "genpass" | "log" => -2,
        "deluser" | "setuser" => -3,
        "dryrun" => -4,
        _ => return Err(ctx.unknown_sub()),
    };
    let argc = ctx.argc() as i32;
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(Error::Arity(format!("acl|{sub}")));
    }
    match (sub.as_str(), ctx.argc()) {
        ("whoami", 2) => {
            let name = ctx.client.user.borrow().clone();
            ctx.r().bulk(&name);
        }
        ("cat", 2) => {
            let mut r = ctx.r();
            r.array(CATEGORIES.len());
            for c in CATEGORIES {
                r.bulk(c.as_bytes());
            }
        }
        ("cat", 3) => {
            let cat = String::from_utf8_lossy(ctx.arg(2)).to_ascii_lowercase();
            let bit = category_bit(&cat).ok_or_else(|| {
                cmd::err(format!(
                    "Unknown category '{}'",
                    cmd::trunc(ctx.arg(2), 128)
                ))
            })?;
            let cats = category_table();
            let names: Vec<&str> = cmd::table()
                .values()
                .filter(|i| cats.get(i.idx).is_some_and(|c| c & bit != 0))
                .filter(|i| cmd::in_version(ctx.node, i))
                .map(|i| i.def.name)
                .collect();
            let mut r = ctx.r();
            r.array(names.len());
            for n in names {
                r.bulk(n.as_bytes());
            }
        }
        ("users", 2) => {
            let names = user_names(ctx.node);
            let mut r = ctx.r();
            r.array(names.len());
            for n in names {
                r.bulk(&n);
            }
        }
        ("list", 2) => {
            let lines: Vec<String> = match &ctx.node.acl {
                Some(acl) => {
                    let mut v: Vec<&User> = acl.users.values().collect();
                    v.sort_by(|a, b| a.name.cmp(&b.name));
                    v.iter()
                        .map(|u| {
                            format!("user {} {}", String::from_utf8_lossy(&u.name), u.describe())
                        })
                        .collect()
                }
                None => vec![format!(
                    "user default {}",
                    legacy_default(ctx.node).describe()
                )],
            };
            let mut r = ctx.r();
            r.array(lines.len());
            for l in lines {
                r.bulk(l.as_bytes());
            }
        }
        ("help", 2) => {
            ctx.r().lines(HELP);
        }
        ("load" | "save", 2) => {
            return Err(cmd::err("This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."));
        }
        ("getuser", 3) => {
            let u = match &ctx.node.acl {
                Some(acl) => acl.users.get(ctx.arg(2)).cloned(),
                None if ctx.arg(2) == b"default" => Some(legacy_default(ctx.node)),
                None => None,
            };
            let mut r = ctx.r();
            let Some(u) = u else {
                r.null();
                return Ok(());
            };
            r.map(6);
            r.bulk(b"flags");
            let mut flags = vec![if u.enabled { "on" } else { "off" }];
            if u.nopass {
                flags.push("nopass");
            }
            r.set(flags.len());
            for f in flags {
                r.bulk(f.as_bytes());
            }
            r.bulk(b"passwords");
            r.array(u.passwords.len());
            for p in &u.passwords {
                r.bulk(hex(p).as_bytes());
            }
            for (field, value) in [
                ("commands", u.commands_rule()),
                ("keys", u.keys_rule()),
                ("channels", u.channels_rule()),
            ] {
                r.bulk(field.as_bytes());
                r.bulk(value.as_bytes());
            }
            r.bulk(b"selectors");
            r.array(0);
        }
        ("dryrun", n) if n >= 4 => {
            let u = match &ctx.node.acl {
                Some(acl) => acl.users.get(ctx.arg(2)).cloned(),
                None if ctx.arg(2) == b"default" => Some(legacy_default(ctx.node)),
                None => None,
            }
            .ok_or_else(|| {
                cmd::err(format!(
                    "User '{}' not found",
                    String::from_utf8_lossy(ctx.arg(2))
                ))
            })?;
            let parts: Vec<&[u8]> = (3..n).map(|i| ctx.arg(i)).collect();
            let owned = crate::resp::OwnedCmd::from_parts(&parts);
            let args = owned.args();
            let info = cmd::lookup(args.get(0)).ok_or_else(|| {
                cmd::err(format!(
                    "Command '{}' not found",
                    String::from_utf8_lossy(args.get(0))
                ))
            })?;
            let arity = info.def.arity;
            let argc = args.len() as i32;
            if (arity > 0 && argc != arity) || argc < -arity {
                return Err(Error::Arity(info.def.name.to_string()));
            }
            match check_user(&u, info, &args) {
                Ok(()) => ctx.r().ok(),
                Err(d) => ctx.r().bulk(d.dryrun_message().as_bytes()),
            }
        }
        ("log", 2 | 3) => {
            let mut count = 10usize;
            if ctx.argc() == 3 {
                if ctx.arg_eq(2, "reset") {
                    ctx.node.acl_log.clear();
                    ctx.r().ok();
                    return Ok(());
                }
                count = ctx.int(2)?.max(0) as usize;
            }
            let now = crate::db::now_ms();
            let entries: Vec<LogEntry> = ctx.node.acl_log.iter().take(count).cloned().collect();
            let mut r = ctx.r();
            r.array(entries.len());
            for e in entries {
                r.map(7);
                r.bulk(b"count");
                r.int(e.count as i64);
                for (k, v) in [
                    ("reason", e.reason.as_bytes()),
                    ("context", e.context.as_bytes()),
                    ("object", &e.object),
                    ("username", &e.username),
                ] {
                    r.bulk(k.as_bytes());
                    r.bulk(v);
                }
                r.bulk(b"age-seconds");
                r.double(now.saturating_sub(e.at_ms) as f64 / 1000.0);
                r.bulk(b"client-info");
                r.bulk(e.client_info.as_bytes());
            }
        }
        ("genpass", 2 | 3) => {
            let bits = if ctx.argc() == 3 {
                let b = ctx.int(2)?;
                if b <= 0 || b > 4096 {
                    return Err(cmd::err("ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"));
                }
                b as usize
            } else {
                256
            };
            let chars = bits.div_ceil(4);
            let mut s = String::with_capacity(chars);
            while s.len() < chars {
                s.push_str(&format!("{:016x}", ctx.node.ks.rng.next_u64()));
            }
            s.truncate(chars);
            ctx.r().bulk(s.as_bytes());
        }
        ("setuser", n) if n >= 3 => {
            let name = ctx.arg(2).to_vec();
            let mut acl = match &ctx.node.acl {
                Some(a) => (**a).clone(),
                None => {
                    let mut a = Acl::default();
                    a.users
                        .insert(b"default".to_vec(), legacy_default(ctx.node));
                    a
                }
            };
            let mut u = acl
                .users
                .get(&name)
                .cloned()
                .unwrap_or_else(|| User::new(&name));
            for i in 3..n {
                let rule = ctx.arg(i);
                u.apply(rule).map_err(|e| {
                    cmd::err(format!(
                        "Error in ACL SETUSER modifier '{}': {e}",
                        String::from_utf8_lossy(rule)
                    ))
                })?;
            }
            acl.users.insert(name, u);
            set_users(ctx.node, Some(acl));
            ctx.r().ok();
        }
        ("deluser", n) if n >= 3 => {
            let mut deleted = 0;
            let mut acl = ctx.node.acl.as_deref().cloned().unwrap_or_default();
            for i in 2..n {
                if ctx.arg(i) == b"default" {
                    return Err(cmd::err("The 'default' user cannot be removed"));
                }
                if acl.users.shift_remove(ctx.arg(i)).is_some() {
                    deleted += 1;
                }
            }
            if ctx.node.acl.is_some() {
                set_users(ctx.node, Some(acl));
            }
            ctx.r().int(deleted);
        }
        _ => {
            return Err(cmd::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
                cmd::trunc(ctx.arg(1), 128)
            )))
        }
    }
    Ok(())
}

fn user_names(node: &Node) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = match &node.acl {
        Some(acl) => acl.users.keys().cloned().collect(),
        None => vec![b"default".to_vec()],
    };
    names.sort();
    names
}

/// The `default` user a node without ACL users has (`requirepass` as its password).
fn legacy_default(node: &Node) -> User {
    let mut u = User::default_user();
    if let Some(p) = &node.settings.requirepass {
        let mut rule = b">".to_vec();
        rule.extend_from_slice(p);
        let _ = u.apply(&rule);
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let mut u = User::new(b"app");
        for r in ["on", ">secretpass", "~app:*", "+@read"] {
            u.apply(r.as_bytes()).unwrap_or_else(|e| panic!("{r}: {e}"));
        }
        assert!(u.enabled && u.check_password(b"secretpass") && !u.check_password(b"x"));
        assert!(u.key_allowed(b"app:1", KEY_READ) && !u.key_allowed(b"other", KEY_READ));
        assert_eq!(u.apply(b"foo"), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"+nocmd"), Err(RuleError::Unknown));
        assert_eq!(u.apply(b"+@nocat"), Err(RuleError::Unknown));
        assert_eq!(u.apply(b"%X~a"), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"#abc"), Err(RuleError::BadHash));
        assert!(u.describe().starts_with("on #"));
    }

    #[test]
    fn access_strings_skip_unknown_commands() {
        let mut u = User::new(b"x");
        assert!(u.apply_access_string("on ~* +@all -notacommand").is_ok());
        assert!(u.apply_access_string("on bogus").is_err());
    }
}
