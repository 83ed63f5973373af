//! ElastiCache RBAC: users and user groups (CreateUser … DeleteUserGroup), and
//! what replication groups attached to a user group make their nodes enforce.
//!
//! Statuses follow AWS: a user is `active` at once and `modifying` / `deleting`
//! for `--provision-delay-ms` after a change; a user group is `creating` /
//! `modifying` / `deleting` for that long. Transitions are evaluated when the
//! record is read (`now >= pending_until`), so no timer is needed and a restart
//! in the middle finishes them.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_query::{Params, XmlWriter};
use serde::{Deserialize, Serialize};

use crate::clusters::node_key;
use crate::error::ApiError;
use crate::ids::CacheNodeId;
use crate::model::{GroupRecord, GroupSpec, NodeAcl, NodeAclUser};
use crate::{now_ms, paginate, Inner};

const USERS: &str = "users";
const GROUPS: &str = "user_groups";
const MAX_USERS: usize = 1000;
const MAX_GROUPS: usize = 100;
/// ElastiCache's limit of users per user group.
const MAX_GROUP_USERS: usize = 100;
const DEFAULT_ID: &str = "default";
const MIN_ENGINE_VERSION: &str = "6.0";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserSpec {
    pub user_name: String,
    pub engine: String,
    pub access_string: String,
    /// `password`, `no-password` or `iam` (the output spelling).
    pub auth_type: String,
    /// Kept locally: the nodes need them.
    pub passwords: Vec<String>,
    pub status: String,
    #[serde(default)]
    pub pending_until_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserGroupSpec {
    pub engine: String,
    pub user_ids: Vec<String>,
    pub status: String,
    #[serde(default)]
    pub pending_until_ms: Option<i64>,
    #[serde(default)]
    pub pending_add: Vec<String>,
    #[serde(default)]
    pub pending_remove: Vec<String>,
}

struct User {
    id: String,
    spec: UserSpec,
}

struct UserGroup {
    id: String,
    spec: UserGroupSpec,
}

/// The status a record shows now: transitional ones end at `pending_until`.
/// `None` means a finished deletion (the record is gone).
fn effective(status: &str, until: Option<i64>) -> Option<&str> {
    match until {
        Some(t) if now_ms() >= t => match status {
            "deleting" => None,
            _ => Some("active"),
        },
        _ => Some(status),
    }
}

fn builtin_default(region: &str) -> User {
    let _ = region;
    User {
        id: DEFAULT_ID.into(),
        spec: UserSpec {
            user_name: DEFAULT_ID.into(),
            engine: "redis".into(),
            access_string: "on ~* +@all".into(),
            auth_type: "no-password".into(),
            passwords: Vec::new(),
            status: "active".into(),
            pending_until_ms: None,
        },
    }
}

async fn load_user(cp: &Inner, region: &str, id: &str) -> Result<Option<User>, ApiError> {
    if id == DEFAULT_ID {
        return Ok(Some(builtin_default(region)));
    }
    let Some((_, mut spec)) = cp.store.named_spec::<UserSpec>(USERS, region, id).await? else {
        return Ok(None);
    };
    match effective(&spec.status, spec.pending_until_ms) {
        None => Ok(None),
        Some(s) => {
            spec.status = s.to_string();
            Ok(Some(User {
                id: id.to_string(),
                spec,
            }))
        }
    }
}

async fn all_users(cp: &Inner, region: &str) -> Result<Vec<User>, ApiError> {
    let mut out = vec![builtin_default(region)];
    for (id, _, mut spec) in cp.store.named_specs::<UserSpec>(USERS, region).await? {
        if let Some(s) = effective(&spec.status, spec.pending_until_ms) {
            spec.status = s.to_string();
            out.push(User { id, spec });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

async fn load_group(cp: &Inner, region: &str, id: &str) -> Result<Option<UserGroup>, ApiError> {
    let Some((_, mut spec)) = cp
        .store
        .named_spec::<UserGroupSpec>(GROUPS, region, id)
        .await?
    else {
        return Ok(None);
    };
    Ok(settle_group(id, &mut spec).then(|| UserGroup {
        id: id.to_string(),
        spec,
    }))
}

/// Apply a finished transition to a group read from the store; false when gone.
fn settle_group(_id: &str, spec: &mut UserGroupSpec) -> bool {
    match effective(&spec.status, spec.pending_until_ms) {
        None => false,
        Some(s) => {
            if s == "active" {
                spec.pending_add.clear();
                spec.pending_remove.clear();
            }
            spec.status = s.to_string();
            true
        }
    }
}

async fn all_groups(cp: &Inner, region: &str) -> Result<Vec<UserGroup>, ApiError> {
    let mut out = Vec::new();
    for (id, _, mut spec) in cp
        .store
        .named_specs::<UserGroupSpec>(GROUPS, region)
        .await?
    {
        if settle_group(&id, &mut spec) {
            out.push(UserGroup { id, spec });
        }
    }
    Ok(out)
}

fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id.len() <= 40;
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidParameterValue(format!(
            "{field} must begin with a letter, contain only ASCII letters, digits and hyphens, not end with a hyphen or contain two consecutive hyphens, and be at most 40 characters: {id}"
        )))
    }
}

fn engine(raw: &str) -> Result<String, ApiError> {
    let e = raw.to_ascii_lowercase();
    match e.as_str() {
        "redis" | "valkey" => Ok(e),
        _ => Err(ApiError::InvalidParameterValue(format!(
            "Invalid engine {raw}: users and user groups support redis and valkey."
        ))),
    }
}

/// ElastiCache's password rules: 16–128 printable characters, none of space,
/// `"`, `/`, `@` (the same as AUTH tokens).
fn check_password(p: &str) -> Result<(), ApiError> {
    let printable = p
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '/' | '@'));
    if (16..=128).contains(&p.len()) && printable {
        Ok(())
    } else {
        Err(ApiError::InvalidParameterValue(
            "Passwords must be 16 to 128 printable characters, without spaces, '\"', '/' or '@'."
                .into(),
        ))
    }
}

/// Validate an access string with the engine's own ACL parser.
fn check_access_string(s: &str) -> Result<(), ApiError> {
    if s.trim().is_empty() {
        return Err(ApiError::InvalidParameterValue(
            "Access string must not be empty.".into(),
        ));
    }
    let mut u = redis_engine::acl::User::new(b"check");
    u.apply_access_string(s).map_err(|(rule, e)| {
        ApiError::InvalidParameterValue(format!("Access string is invalid: '{rule}': {e}"))
    })
}

/// The authentication settings of a CreateUser/ModifyUser call:
/// Some((type, passwords)) when the call sets them.
fn authentication(p: &Params) -> Result<Option<(String, Vec<String>)>, ApiError> {
    let passwords = p.list("Passwords", "member")?;
    let no_password = p.bool("NoPasswordRequired")?;
    let mode = p.nested("AuthenticationMode");
    let mode_type = mode.str("Type");
    let mode_passwords = mode.list("Passwords", "member")?;
    if mode_type.is_some() || mode_passwords.is_some() {
        // Terraform sends NoPasswordRequired=false alongside AuthenticationMode.
        if passwords.as_ref().is_some_and(|p| !p.is_empty()) || no_password == Some(true) {
            return Err(ApiError::InvalidParameterCombination(
                "AuthenticationMode cannot be combined with Passwords or NoPasswordRequired."
                    .into(),
            ));
        }
        let list = mode_passwords.unwrap_or_default();
        return match mode_type {
            Some("password") => {
                check_passwords(&list)?;
                Ok(Some(("password".into(), list)))
            }
            Some(t @ ("no-password-required" | "iam")) => {
                if !list.is_empty() {
                    return Err(ApiError::InvalidParameterCombination(format!(
                        "Passwords cannot be given with authentication type {t}."
                    )));
                }
                let out = if t == "iam" { "iam" } else { "no-password" };
                Ok(Some((out.into(), Vec::new())))
            }
            Some(other) => Err(ApiError::InvalidParameterValue(format!(
                "Invalid AuthenticationMode.Type {other}: use password, no-password-required or iam."
            ))),
            None => Err(ApiError::MissingParameter("AuthenticationMode.Type".into())),
        };
    }
    match (passwords, no_password) {
        (Some(list), Some(true)) if !list.is_empty() => Err(ApiError::InvalidParameterCombination(
            "Passwords cannot be given with NoPasswordRequired.".into(),
        )),
        (_, Some(true)) => Ok(Some(("no-password".into(), Vec::new()))),
        (Some(list), _) => {
            check_passwords(&list)?;
            Ok(Some(("password".into(), list)))
        }
        (None, Some(false)) => Err(ApiError::InvalidParameterValue(
            "No password was given and NoPasswordRequired is false.".into(),
        )),
        (None, None) => Ok(None),
    }
}

fn check_passwords(list: &[String]) -> Result<(), ApiError> {
    if list.is_empty() || list.len() > 2 {
        return Err(ApiError::InvalidParameterValue(
            "A user has one or two passwords.".into(),
        ));
    }
    list.iter().try_for_each(|p| check_password(p))
}

fn user_arn(cp: &Inner, region: &str, id: &str) -> String {
    cp.arn(region, "user", id)
}

fn group_arn(cp: &Inner, region: &str, id: &str) -> String {
    cp.arn(region, "usergroup", id)
}

fn write_user(cp: &Inner, region: &str, w: &mut XmlWriter, u: &User, groups: &[String]) {
    w.text("UserId", &u.id)
        .text("UserName", &u.spec.user_name)
        .text("Status", &u.spec.status)
        .text("Engine", &u.spec.engine)
        .text("MinimumEngineVersion", MIN_ENGINE_VERSION)
        .text("AccessString", &u.spec.access_string)
        .string_list("UserGroupIds", "member", groups)
        .element("Authentication", |w| {
            w.text("Type", &u.spec.auth_type)
                .int("PasswordCount", u.spec.passwords.len() as i64);
        })
        .text("ARN", &user_arn(cp, region, &u.id));
}

fn write_group(
    cp: &Inner,
    region: &str,
    w: &mut XmlWriter,
    g: &UserGroup,
    rgs: &[String],
    caches: &[String],
) {
    w.text("UserGroupId", &g.id)
        .text("Status", &g.spec.status)
        .text("Engine", &g.spec.engine)
        .string_list("UserIds", "member", &g.spec.user_ids)
        .text("MinimumEngineVersion", MIN_ENGINE_VERSION);
    if !g.spec.pending_add.is_empty() || !g.spec.pending_remove.is_empty() {
        w.element("PendingChanges", |w| {
            w.string_list("UserIdsToRemove", "member", &g.spec.pending_remove)
                .string_list("UserIdsToAdd", "member", &g.spec.pending_add);
        });
    }
    w.string_list("ReplicationGroups", "member", rgs)
        .string_list("ServerlessCaches", "member", caches)
        .text("ARN", &group_arn(cp, region, &g.id));
}

async fn groups_of(cp: &Inner, region: &str, user: &str) -> Result<Vec<String>, ApiError> {
    Ok(all_groups(cp, region)
        .await?
        .into_iter()
        .filter(|g| g.spec.user_ids.iter().any(|u| u == user))
        .map(|g| g.id)
        .collect())
}

async fn replication_groups_of(
    cp: &Inner,
    region: &str,
    group: &str,
) -> Result<Vec<GroupRecord>, ApiError> {
    Ok(cp
        .store
        .replication_groups(region)
        .await?
        .into_iter()
        .filter(|g| g.spec.user_group_ids.iter().any(|u| u == group))
        .collect())
}

async fn render_user(cp: &Inner, region: &str, u: &User) -> Result<String, ApiError> {
    let groups = groups_of(cp, region, &u.id).await?;
    let mut w = XmlWriter::new();
    write_user(cp, region, &mut w, u, &groups);
    Ok(w.finish())
}

async fn render_group(cp: &Inner, region: &str, g: &UserGroup) -> Result<String, ApiError> {
    let rgs: Vec<String> = replication_groups_of(cp, region, &g.id)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let caches = crate::serverless::using_user_group(cp, region, &g.id).await?;
    let mut w = XmlWriter::new();
    write_group(cp, region, &mut w, g, &rgs, &caches);
    Ok(w.finish())
}

fn pending_until(cp: &Inner) -> i64 {
    now_ms() + cp.config.provision_delay.as_millis() as i64
}

pub(crate) async fn create_user(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let id = p.required("UserId")?.to_string();
    check_id("UserId", &id)?;
    let user_name = p.required("UserName")?.to_string();
    if user_name.is_empty() || user_name.chars().any(|c| c.is_whitespace()) {
        return Err(ApiError::InvalidParameterValue(
            "UserName must be non-empty and contain no spaces.".into(),
        ));
    }
    let engine = engine(p.required("Engine")?)?;
    let access_string = p.required("AccessString")?.to_string();
    check_access_string(&access_string)?;
    let (auth_type, passwords) = authentication(p)?.ok_or_else(|| {
        ApiError::InvalidParameterValue(
            "Passwords, NoPasswordRequired or AuthenticationMode must be given.".into(),
        )
    })?;
    if auth_type == "iam" && user_name != id {
        return Err(ApiError::InvalidParameterValue(
            "For IAM authentication the UserId and UserName must be the same.".into(),
        ));
    }
    let tags = p.tags("Tags")?.unwrap_or_default();
    crate::clusters::check_tag_count(tags.len())?;
    let _guard = cp.lock.lock().await;
    if load_user(cp, region, &id).await?.is_some() {
        return Err(ApiError::UserAlreadyExists(id));
    }
    if all_users(cp, region).await?.len() >= MAX_USERS {
        return Err(ApiError::UserQuotaExceeded(format!(
            "A region can have at most {MAX_USERS} users."
        )));
    }
    let u = User {
        id: id.clone(),
        spec: UserSpec {
            user_name,
            engine,
            access_string,
            auth_type,
            passwords,
            status: "active".into(),
            pending_until_ms: None,
        },
    };
    cp.store
        .put_named_spec(USERS, region, &id, now_ms(), &u.spec)
        .await?;
    cp.store.put_tags(&user_arn(cp, region, &id), &tags).await?;
    tracing::info!(region, user = %id, "user created");
    render_user(cp, region, &u).await
}

pub(crate) async fn describe_users(
    cp: &Inner,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let mut users = match p.str("UserId") {
        Some(id) => vec![load_user(cp, region, id)
            .await?
            .ok_or_else(|| ApiError::UserNotFound(id.to_string()))?],
        None => all_users(cp, region).await?,
    };
    if let Some(e) = p.str("Engine") {
        let e = e.to_ascii_lowercase();
        users.retain(|u| u.spec.engine == e);
    }
    for f in p.struct_list("Filters", "member")?.unwrap_or_default() {
        let name = f.required("Name")?.to_string();
        let values = f.list("Values", "member")?.unwrap_or_default();
        match name.as_str() {
            "user-id" => users.retain(|u| values.contains(&u.id)),
            "user-name" => users.retain(|u| values.contains(&u.spec.user_name)),
            "engine" => users.retain(|u| {
                values
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(&u.spec.engine))
            }),
            other => {
                return Err(ApiError::InvalidParameterValue(format!(
                    "Invalid filter name {other}: use user-id, user-name or engine."
                )))
            }
        }
    }
    let (page, marker) = paginate(users, p, |u| u.id.clone())?;
    let groups = all_groups(cp, region).await?;
    let mut w = XmlWriter::new();
    w.list("Users", "member", &page, |w, u| {
        let of: Vec<String> = groups
            .iter()
            .filter(|g| g.spec.user_ids.contains(&u.id))
            .map(|g| g.id.clone())
            .collect();
        write_user(cp, region, w, u, &of);
    });
    w.opt_text("Marker", marker.as_deref());
    Ok(w.finish())
}

pub(crate) async fn modify_user(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let id = p.required("UserId")?.to_string();
    let _guard = cp.lock.lock().await;
    if id == DEFAULT_ID {
        return Err(ApiError::InvalidParameterValue(
            "The built-in default user cannot be modified; create a user named default instead."
                .into(),
        ));
    }
    let mut u = load_user(cp, region, &id)
        .await?
        .ok_or_else(|| ApiError::UserNotFound(id.clone()))?;
    if u.spec.status != "active" {
        return Err(ApiError::InvalidUserState(format!(
            "User {id} is not active (current state: {}).",
            u.spec.status
        )));
    }
    let mut changed = false;
    if let Some(a) = p.str("AccessString") {
        if p.has("AppendAccessString") {
            return Err(ApiError::InvalidParameterCombination(
                "AccessString and AppendAccessString cannot both be given.".into(),
            ));
        }
        check_access_string(a)?;
        u.spec.access_string = a.to_string();
        changed = true;
    }
    if let Some(a) = p.str("AppendAccessString") {
        let joined = format!("{} {a}", u.spec.access_string);
        check_access_string(&joined)?;
        u.spec.access_string = joined;
        changed = true;
    }
    if let Some((t, pw)) = authentication(p)? {
        if t == "iam" && u.spec.user_name != id {
            return Err(ApiError::InvalidParameterValue(
                "For IAM authentication the UserId and UserName must be the same.".into(),
            ));
        }
        u.spec.auth_type = t;
        u.spec.passwords = pw;
        changed = true;
    }
    if let Some(e) = p.str("Engine") {
        u.spec.engine = engine(e)?;
        changed = true;
    }
    if !changed {
        return Err(ApiError::InvalidParameterCombination(
            "No modifications were requested.".into(),
        ));
    }
    u.spec.status = "modifying".into();
    u.spec.pending_until_ms = Some(pending_until(cp));
    cp.store
        .put_named_spec(USERS, region, &id, now_ms(), &u.spec)
        .await?;
    let groups = groups_of(cp, region, &id).await?;
    refresh_nodes(cp, region, &groups).await?;
    render_user(cp, region, &u).await
}

pub(crate) async fn delete_user(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let id = p.required("UserId")?.to_string();
    let _guard = cp.lock.lock().await;
    if id == DEFAULT_ID {
        return Err(ApiError::InvalidParameterValue(
            "The built-in default user cannot be deleted.".into(),
        ));
    }
    let mut u = load_user(cp, region, &id)
        .await?
        .ok_or_else(|| ApiError::UserNotFound(id.clone()))?;
    if u.spec.status == "deleting" {
        return Err(ApiError::InvalidUserState(format!(
            "User {id} is already being deleted."
        )));
    }
    let groups = groups_of(cp, region, &id).await?;
    if u.spec.user_name == DEFAULT_ID && !groups.is_empty() {
        return Err(ApiError::DefaultUserAssociatedToUserGroup(format!(
            "User {id} is the default user of user group(s) {}; replace it first.",
            groups.join(", ")
        )));
    }
    // Other users leave their groups, whose nodes drop them at once.
    for gid in &groups {
        if let Some(mut g) = load_group(cp, region, gid).await? {
            g.spec.user_ids.retain(|x| x != &id);
            cp.store
                .put_named_spec(GROUPS, region, gid, now_ms(), &g.spec)
                .await?;
        }
    }
    u.spec.status = "deleting".into();
    let out = render_user(cp, region, &u).await;
    if cp.config.provision_delay.is_zero() {
        cp.store
            .delete_named_spec(USERS, region, &id, &user_arn(cp, region, &id))
            .await?;
    } else {
        u.spec.pending_until_ms = Some(pending_until(cp));
        cp.store
            .put_named_spec(USERS, region, &id, now_ms(), &u.spec)
            .await?;
    }
    refresh_nodes(cp, region, &groups).await?;
    tracing::info!(region, user = %id, "user deleted");
    out
}

/// Users of a prospective group: they exist, one is named `default`, no user
/// name appears twice.
async fn check_members(cp: &Inner, region: &str, ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > MAX_GROUP_USERS {
        return Err(ApiError::InvalidParameterValue(format!(
            "A user group can have at most {MAX_GROUP_USERS} users."
        )));
    }
    let mut names = BTreeSet::new();
    for id in ids {
        let u = load_user(cp, region, id)
            .await?
            .ok_or_else(|| ApiError::UserNotFound(id.clone()))?;
        if !names.insert(u.spec.user_name.clone()) {
            return Err(ApiError::DuplicateUserName(format!(
                "More than one user named {} in the user group.",
                u.spec.user_name
            )));
        }
    }
    if !ids.is_empty() && !names.contains(DEFAULT_ID) {
        return Err(ApiError::DefaultUserRequired(
            "A user group must contain a user named default.".into(),
        ));
    }
    Ok(())
}

pub(crate) async fn create_group(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let id = p.required("UserGroupId")?.to_string();
    check_id("UserGroupId", &id)?;
    let engine = engine(p.required("Engine")?)?;
    let mut user_ids = p.list("UserIds", "member")?.unwrap_or_default();
    dedup(&mut user_ids);
    let tags = p.tags("Tags")?.unwrap_or_default();
    crate::clusters::check_tag_count(tags.len())?;
    let _guard = cp.lock.lock().await;
    if load_group(cp, region, &id).await?.is_some() {
        return Err(ApiError::UserGroupAlreadyExists(id));
    }
    if all_groups(cp, region).await?.len() >= MAX_GROUPS {
        return Err(ApiError::UserGroupQuotaExceeded(format!(
            "A region can have at most {MAX_GROUPS} user groups."
        )));
    }
    check_members(cp, region, &user_ids).await?;
    let g = UserGroup {
        id: id.clone(),
        spec: UserGroupSpec {
            engine,
            user_ids,
            status: "creating".into(),
            pending_until_ms: Some(pending_until(cp)),
            pending_add: Vec::new(),
            pending_remove: Vec::new(),
        },
    };
    cp.store
        .put_named_spec(GROUPS, region, &id, now_ms(), &g.spec)
        .await?;
    cp.store
        .put_tags(&group_arn(cp, region, &id), &tags)
        .await?;
    tracing::info!(region, user_group = %id, "user group created");
    render_group(cp, region, &g).await
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

pub(crate) async fn describe_groups(
    cp: &Inner,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let groups = match p.str("UserGroupId") {
        Some(id) => vec![load_group(cp, region, id)
            .await?
            .ok_or_else(|| ApiError::UserGroupNotFound(id.to_string()))?],
        None => all_groups(cp, region).await?,
    };
    let (page, marker) = paginate(groups, p, |g| g.id.clone())?;
    let rgs = cp.store.replication_groups(region).await?;
    let mut caches = Vec::with_capacity(page.len());
    for g in &page {
        caches.push(crate::serverless::using_user_group(cp, region, &g.id).await?);
    }
    let mut w = XmlWriter::new();
    let mut caches = caches.into_iter();
    w.list("UserGroups", "member", &page, |w, g| {
        let of: Vec<String> = rgs
            .iter()
            .filter(|r| r.spec.user_group_ids.contains(&g.id))
            .map(|r| r.id.clone())
            .collect();
        write_group(cp, region, w, g, &of, &caches.next().unwrap_or_default());
    });
    w.opt_text("Marker", marker.as_deref());
    Ok(w.finish())
}

pub(crate) async fn modify_group(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let id = p.required("UserGroupId")?.to_string();
    let add = p.list("UserIdsToAdd", "member")?.unwrap_or_default();
    let remove = p.list("UserIdsToRemove", "member")?.unwrap_or_default();
    let _guard = cp.lock.lock().await;
    let mut g = load_group(cp, region, &id)
        .await?
        .ok_or_else(|| ApiError::UserGroupNotFound(id.clone()))?;
    if g.spec.status != "active" {
        return Err(ApiError::InvalidUserGroupState(format!(
            "User group {id} is not active (current state: {}).",
            g.spec.status
        )));
    }
    if let Some(e) = p.str("Engine") {
        g.spec.engine = engine(e)?;
    }
    if add.is_empty() && remove.is_empty() && p.str("Engine").is_none() {
        return Err(ApiError::InvalidParameterCombination(
            "No modifications were requested.".into(),
        ));
    }
    for r in &remove {
        if !g.spec.user_ids.contains(r) {
            return Err(ApiError::UserNotFound(format!(
                "{r} is not in user group {id}"
            )));
        }
    }
    let mut users: Vec<String> = g
        .spec
        .user_ids
        .iter()
        .filter(|u| !remove.contains(u))
        .cloned()
        .collect();
    users.extend(add.iter().cloned());
    dedup(&mut users);
    check_members(cp, region, &users).await?;
    if users.is_empty() && !g.spec.user_ids.is_empty() {
        return Err(ApiError::DefaultUserRequired(
            "A user group must contain a user named default.".into(),
        ));
    }
    g.spec.user_ids = users;
    g.spec.status = "modifying".into();
    g.spec.pending_until_ms = Some(pending_until(cp));
    g.spec.pending_add = add;
    g.spec.pending_remove = remove;
    cp.store
        .put_named_spec(GROUPS, region, &id, now_ms(), &g.spec)
        .await?;
    refresh_nodes(cp, region, std::slice::from_ref(&id)).await?;
    render_group(cp, region, &g).await
}

pub(crate) async fn delete_group(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let id = p.required("UserGroupId")?.to_string();
    let _guard = cp.lock.lock().await;
    let mut g = load_group(cp, region, &id)
        .await?
        .ok_or_else(|| ApiError::UserGroupNotFound(id.clone()))?;
    if g.spec.status != "active" {
        return Err(ApiError::InvalidUserGroupState(format!(
            "User group {id} is not active (current state: {}).",
            g.spec.status
        )));
    }
    let rgs = replication_groups_of(cp, region, &id).await?;
    if !rgs.is_empty() {
        let names: Vec<String> = rgs.into_iter().map(|r| r.id).collect();
        return Err(ApiError::InvalidUserGroupState(format!(
            "User group {id} is associated with replication group(s) {}.",
            names.join(", ")
        )));
    }
    let caches = crate::serverless::using_user_group(cp, region, &id).await?;
    if !caches.is_empty() {
        return Err(ApiError::InvalidUserGroupState(format!(
            "User group {id} is associated with serverless cache(s) {}.",
            caches.join(", ")
        )));
    }
    g.spec.status = "deleting".into();
    let out = render_group(cp, region, &g).await;
    if cp.config.provision_delay.is_zero() {
        cp.store
            .delete_named_spec(GROUPS, region, &id, &group_arn(cp, region, &id))
            .await?;
    } else {
        g.spec.pending_until_ms = Some(pending_until(cp));
        cp.store
            .put_named_spec(GROUPS, region, &id, now_ms(), &g.spec)
            .await?;
    }
    tracing::info!(region, user_group = %id, "user group deleted");
    out
}

/// Whether a user or user group ARN names something (tags).
pub(crate) async fn exists(
    cp: &Inner,
    region: &str,
    kind: &str,
    id: &str,
) -> Result<bool, ApiError> {
    Ok(match kind {
        "user" => load_user(cp, region, id).await?.is_some(),
        _ => load_group(cp, region, id).await?.is_some(),
    })
}

/// Validate the user groups a replication group is attached to (create/modify).
pub(crate) async fn check_attach(
    cp: &Inner,
    region: &str,
    ids: &[String],
    transit_encryption: bool,
    has_auth_token: bool,
) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    if !transit_encryption {
        return Err(ApiError::InvalidParameterCombination(
            "User groups require TransitEncryptionEnabled.".into(),
        ));
    }
    if has_auth_token {
        return Err(ApiError::InvalidParameterCombination(
            "UserGroupIds cannot be used together with an AuthToken.".into(),
        ));
    }
    if ids.len() > 1 {
        return Err(ApiError::InvalidParameterValue(
            "A replication group can be associated with one user group.".into(),
        ));
    }
    for id in ids {
        let g = load_group(cp, region, id)
            .await?
            .ok_or_else(|| ApiError::UserGroupNotFound(id.clone()))?;
        if g.spec.status != "active" {
            return Err(ApiError::InvalidUserGroupState(format!(
                "User group {id} is not active (current state: {}).",
                g.spec.status
            )));
        }
    }
    Ok(())
}

/// What the nodes of a replication group enforce: its user group's users, or —
/// while an AUTH token is being rotated — a `default` user with both tokens.
pub(crate) async fn node_acl(
    cp: &Inner,
    region: &str,
    rg_id: &str,
    s: &GroupSpec,
) -> Result<Option<NodeAcl>, ApiError> {
    if let (Some(new), Some(old)) = (&s.auth_token, &s.previous_auth_token) {
        return Ok(Some(NodeAcl {
            cache_name: rg_id.to_string(),
            users: vec![NodeAclUser {
                name: DEFAULT_ID.into(),
                rules: format!(">{old} >{new} on ~* &* +@all"),
                iam: false,
            }],
        }));
    }
    group_acl(cp, region, rg_id, &s.user_group_ids).await
}

/// The users of these user groups as the nodes of cache `cache_name` enforce them
/// (None: no user group, so no ACL users).
pub(crate) async fn group_acl(
    cp: &Inner,
    region: &str,
    cache_name: &str,
    group_ids: &[String],
) -> Result<Option<NodeAcl>, ApiError> {
    if group_ids.is_empty() {
        return Ok(None);
    }
    let mut users = Vec::new();
    for gid in group_ids {
        let Some(g) = load_group(cp, region, gid).await? else {
            continue;
        };
        for uid in &g.spec.user_ids {
            let Some(u) = load_user(cp, region, uid).await? else {
                continue;
            };
            let mut rules = String::new();
            match u.spec.auth_type.as_str() {
                "password" => {
                    for p in &u.spec.passwords {
                        rules.push('>');
                        rules.push_str(p);
                        rules.push(' ');
                    }
                }
                "no-password" => rules.push_str("nopass "),
                _ => {}
            }
            rules.push_str(&u.spec.access_string);
            users.push(NodeAclUser {
                name: u.spec.user_name.clone(),
                rules,
                iam: u.spec.auth_type == "iam",
            });
        }
    }
    Ok(Some(NodeAcl {
        cache_name: cache_name.to_string(),
        users,
    }))
}

/// Recompute and push the users of every replication group attached to these
/// user groups (members' recorded specs follow, so restarts enforce the same).
pub(crate) async fn refresh_nodes(
    cp: &Inner,
    region: &str,
    groups: &[String],
) -> Result<(), ApiError> {
    for rg in cp.store.replication_groups(region).await? {
        if rg.spec.user_group_ids.iter().any(|g| groups.contains(g)) {
            apply_to_members(cp, region, &rg).await?;
        }
    }
    for g in groups {
        for name in crate::serverless::using_user_group(cp, region, g).await? {
            crate::serverless::apply_users(cp, region, &name).await?;
        }
    }
    Ok(())
}

/// Record a replication group's ACL on its members and push it to their nodes.
pub(crate) async fn apply_to_members(
    cp: &Inner,
    region: &str,
    rg: &GroupRecord,
) -> Result<(), ApiError> {
    let acl = node_acl(cp, region, &rg.id, &rg.spec).await?;
    for m in &rg.spec.members {
        let Ok(cid) = crate::ids::CacheClusterId::parse(m) else {
            continue;
        };
        let Some(mut c) = cp.store.cluster(region, &cid).await? else {
            continue;
        };
        if c.spec.acl != acl {
            c.spec.acl = acl.clone();
            cp.store.update_cluster(&c).await?;
        }
        let key = node_key(region, &c.id, CacheNodeId::new(1));
        cp.nodes.set_users(&key, acl.as_ref());
    }
    Ok(())
}
