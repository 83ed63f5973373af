//! Cache parameter groups that take effect: the built-in `default.<family>` groups
//! (read-only), user groups holding only the values users set, and what a node runs
//! with — the family's defaults overlaid with its group's values.
//!
//! An `immediate` change reaches every running node of every cluster using the
//! group at once; a `requires-reboot` change leaves those clusters
//! `pending-reboot` until their nodes are rebooted.

use crate::error::ApiError;
use crate::ids::group_name;
use crate::model::ParameterGroupRecord;
use crate::{clusters, paginate, Inner};
use aws_query::{Params, XmlWriter};
use parameter_catalog::{ChangeType, Family};
use std::collections::BTreeMap;
use std::sync::Arc;

const MAX_GROUPS: usize = 150;
const MAX_CHANGES: usize = 20;

/// A group as the API sees it: stored, or one of the built-in defaults.
struct Group {
    record: ParameterGroupRecord,
    family: &'static Family,
    is_default: bool,
}

fn family(name: &str) -> Result<&'static Family, ApiError> {
    parameter_catalog::family(name).ok_or_else(|| {
        ApiError::InvalidParameterValue(format!(
            "The parameter CacheParameterGroupFamily {name} is not valid."
        ))
    })
}

fn default_group(region: &str, f: &'static Family) -> Group {
    Group {
        record: ParameterGroupRecord {
            region: region.to_string(),
            name: format!("default.{}", f.name),
            family: f.name.to_string(),
            description: format!("Default parameter group for {}", f.name),
            values: BTreeMap::new(),
        },
        family: f,
        is_default: true,
    }
}

async fn find(cp: &Inner, region: &str, raw: &str) -> Result<Group, ApiError> {
    let name = raw.to_ascii_lowercase();
    if let Some(f) = name
        .strip_prefix("default.")
        .and_then(parameter_catalog::family)
    {
        return Ok(default_group(region, f));
    }
    let record = cp
        .store
        .parameter_group(region, &name)
        .await?
        .ok_or_else(|| ApiError::CacheParameterGroupNotFound(raw.to_string()))?;
    let family = family(&record.family)?;
    Ok(Group {
        record,
        family,
        is_default: false,
    })
}

/// Resolve the group a cluster asks for, checking it fits the engine version.
pub(crate) async fn for_cluster(
    cp: &Inner,
    region: &str,
    requested: Option<&str>,
    version_family: &str,
) -> Result<String, ApiError> {
    let name = requested
        .map(str::to_string)
        .unwrap_or_else(|| format!("default.{version_family}"));
    let g = find(cp, region, &name).await?;
    // A `.cluster.on` group belongs to cluster-mode groups; plain clusters take the
    // family without it.
    if g.family.name != version_family {
        return Err(ApiError::InvalidParameterCombination(format!(
            "The parameter group {} has family {}, but the engine version needs family {version_family}.",
            g.record.name, g.family.name
        )));
    }
    Ok(g.record.name)
}

/// The values a node of a cluster using `group` runs with.
pub(crate) async fn effective(
    cp: &Inner,
    region: &str,
    group: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let g = find(cp, region, group).await?;
    let mut out: BTreeMap<String, String> = g
        .family
        .params
        .iter()
        .filter_map(|p| {
            p.default_value
                .as_deref()
                .map(|v| (p.name.to_string(), v.to_string()))
        })
        .collect();
    out.extend(g.record.values);
    Ok(out)
}

pub(crate) async fn create(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let name = group_name(
        "CacheParameterGroupName",
        p.required("CacheParameterGroupName")?,
    )?;
    let f = family(p.required("CacheParameterGroupFamily")?)?;
    let description = p.required("Description")?.to_string();
    let tags = p.tags("Tags")?.unwrap_or_default();
    let _guard = cp.lock.lock().await;
    if name.starts_with("default.") || cp.store.parameter_group(region, &name).await?.is_some() {
        return Err(ApiError::CacheParameterGroupAlreadyExists(name));
    }
    if cp.store.parameter_groups(region).await?.len() >= MAX_GROUPS {
        return Err(ApiError::CacheParameterGroupQuotaExceeded(format!(
            "A region can have at most {MAX_GROUPS} cache parameter groups."
        )));
    }
    let record = ParameterGroupRecord {
        region: region.to_string(),
        name,
        family: f.name.to_string(),
        description,
        values: BTreeMap::new(),
    };
    cp.store.insert_parameter_group(&record).await?;
    cp.store
        .put_tags(&cp.arn(region, "parametergroup", &record.name), &tags)
        .await?;
    tracing::info!(region, parameter_group = %record.name, family = f.name, "cache parameter group created");
    let g = Group {
        record,
        family: f,
        is_default: false,
    };
    let mut w = XmlWriter::new();
    w.element("CacheParameterGroup", |w| write_group(cp, w, &g));
    Ok(w.finish())
}

pub(crate) async fn describe_groups(
    cp: &Inner,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let groups = match p.str("CacheParameterGroupName") {
        Some(n) => vec![find(cp, region, n).await?],
        None => {
            let mut all: Vec<Group> = parameter_catalog::families()
                .map(|f| default_group(region, f))
                .collect();
            for record in cp.store.parameter_groups(region).await? {
                let family = family(&record.family)?;
                all.push(Group {
                    record,
                    family,
                    is_default: false,
                });
            }
            all.sort_by(|a, b| a.record.name.cmp(&b.record.name));
            all
        }
    };
    let (page, marker) = paginate(groups, p, |g| g.record.name.clone())?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.list(
        "CacheParameterGroups",
        "CacheParameterGroup",
        &page,
        |w, g| write_group(cp, w, g),
    );
    Ok(w.finish())
}

fn write_group(cp: &Inner, w: &mut XmlWriter, g: &Group) {
    w.text("CacheParameterGroupName", &g.record.name)
        .text("CacheParameterGroupFamily", &g.record.family)
        .text("Description", &g.record.description)
        .bool("IsGlobal", false)
        .text(
            "ARN",
            &cp.arn(&g.record.region, "parametergroup", &g.record.name),
        );
}

pub(crate) async fn modify(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let name = p.required("CacheParameterGroupName")?;
    let items = p
        .struct_list("ParameterNameValues", "ParameterNameValue")?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ApiError::MissingParameter("ParameterNameValues".into()))?;
    if items.len() > MAX_CHANGES {
        return Err(ApiError::InvalidParameterValue(format!(
            "At most {MAX_CHANGES} parameters can be modified in one request."
        )));
    }
    let _guard = cp.lock.lock().await;
    let g = find(cp, region, name).await?;
    if g.is_default {
        return Err(ApiError::InvalidParameterValue(format!(
            "The default parameter group {} cannot be modified.",
            g.record.name
        )));
    }
    let mut changes = Vec::with_capacity(items.len());
    for item in &items {
        let pname = item.required("ParameterName")?;
        let value = item
            .str("ParameterValue")
            .ok_or_else(|| ApiError::MissingParameter("ParameterValue".into()))?;
        let def = g.family.param(pname).ok_or_else(|| {
            ApiError::InvalidParameterValue(format!("Parameter {pname} doesn't exist"))
        })?;
        if !def.is_modifiable {
            return Err(ApiError::InvalidParameterValue(format!(
                "Parameter {pname} is not modifiable"
            )));
        }
        parameter_catalog::validate(def, value).map_err(ApiError::InvalidParameterValue)?;
        changes.push((pname.to_string(), Some(value.to_string())));
    }
    cp.store
        .set_parameters(region, &g.record.name, &changes)
        .await?;
    tracing::info!(region, parameter_group = %g.record.name, changed = changes.len(), "cache parameter group modified");
    apply(cp, region, &g, &changes).await?;
    Ok(name_only(&g.record.name))
}

pub(crate) async fn reset(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let name = p.required("CacheParameterGroupName")?;
    let all = p.bool("ResetAllParameters")?.unwrap_or(false);
    let items = p
        .struct_list("ParameterNameValues", "ParameterNameValue")?
        .unwrap_or_default();
    if all != items.is_empty() {
        return Err(ApiError::InvalidParameterCombination(
            "Specify either ResetAllParameters or ParameterNameValues.".into(),
        ));
    }
    let _guard = cp.lock.lock().await;
    let g = find(cp, region, name).await?;
    if g.is_default {
        return Err(ApiError::InvalidParameterValue(format!(
            "The default parameter group {} cannot be modified.",
            g.record.name
        )));
    }
    let names: Vec<String> = if all {
        g.record.values.keys().cloned().collect()
    } else {
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let pname = item.required("ParameterName")?;
            if g.family.param(pname).is_none() {
                return Err(ApiError::InvalidParameterValue(format!(
                    "Parameter {pname} doesn't exist"
                )));
            }
            out.push(pname.to_string());
        }
        out
    };
    let changes: Vec<(String, Option<String>)> = names.into_iter().map(|n| (n, None)).collect();
    cp.store
        .set_parameters(region, &g.record.name, &changes)
        .await?;
    tracing::info!(region, parameter_group = %g.record.name, reset = changes.len(), "cache parameter group reset");
    apply(cp, region, &g, &changes).await?;
    Ok(name_only(&g.record.name))
}

pub(crate) async fn delete(cp: &Inner, region: &str, p: &Params) -> Result<(), ApiError> {
    let name = p.required("CacheParameterGroupName")?;
    let _guard = cp.lock.lock().await;
    let g = find(cp, region, name).await?;
    if g.is_default {
        return Err(ApiError::InvalidCacheParameterGroupState(format!(
            "The default parameter group {} cannot be deleted.",
            g.record.name
        )));
    }
    let users = clusters::using_parameter_group(cp, region, &g.record.name).await?;
    if !users.is_empty() {
        return Err(ApiError::InvalidCacheParameterGroupState(format!(
            "Parameter group {} is in use by {}.",
            g.record.name,
            users.join(", ")
        )));
    }
    cp.store
        .delete_parameter_group(
            region,
            &g.record.name,
            &cp.arn(region, "parametergroup", &g.record.name),
        )
        .await?;
    Ok(())
}

/// DescribeCacheParameters: the group's effective parameters, filtered by `Source`.
pub(crate) async fn describe_parameters(
    cp: &Inner,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let g = find(cp, region, p.required("CacheParameterGroupName")?).await?;
    let source = p.str("Source");
    if let Some(s) = source {
        if !matches!(s, "user" | "system" | "engine-default") {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid value for Source: {s}. Valid values are user, system and engine-default."
            )));
        }
    }
    let rows: Vec<ParamRow> = g
        .family
        .params
        .iter()
        .map(|def| {
            let user = g.record.values.get(def.name.as_ref() as &str).cloned();
            ParamRow {
                source: if user.is_some() {
                    "user".to_string()
                } else {
                    def.source.to_string()
                },
                value: user.or_else(|| def.default_value.as_deref().map(str::to_string)),
                def,
            }
        })
        .filter(|r| source.is_none_or(|s| r.source == s))
        .collect();
    let (page, marker) = paginate(rows, p, |r| r.def.name.to_string())?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.list("Parameters", "Parameter", &page, write_param);
    // Node-type-specific values are never user-set.
    let specific = if source.is_some_and(|s| s == "user") {
        &[][..]
    } else {
        &g.family.node_type_specific[..]
    };
    write_node_type_specific(&mut w, specific);
    Ok(w.finish())
}

pub(crate) async fn describe_engine_defaults(p: &Params) -> Result<String, ApiError> {
    let f = family(p.required("CacheParameterGroupFamily")?)?;
    let rows: Vec<ParamRow> = f
        .params
        .iter()
        .map(|def| ParamRow {
            source: def.source.to_string(),
            value: def.default_value.as_deref().map(str::to_string),
            def,
        })
        .collect();
    let (page, marker) = paginate(rows, p, |r| r.def.name.to_string())?;
    let mut w = XmlWriter::new();
    w.element("EngineDefaults", |w| {
        w.text("CacheParameterGroupFamily", &f.name);
        w.opt_text("Marker", marker.as_deref());
        w.list("Parameters", "Parameter", &page, write_param);
        write_node_type_specific(w, &f.node_type_specific);
    });
    Ok(w.finish())
}

struct ParamRow {
    def: &'static parameter_catalog::ParamDef,
    value: Option<String>,
    source: String,
}

fn write_param(w: &mut XmlWriter, r: &ParamRow) {
    let d = r.def;
    w.text("ParameterName", &d.name)
        .opt_text("ParameterValue", r.value.as_deref())
        .text("Description", &d.description)
        .text("Source", &r.source)
        .text("DataType", d.data_type.as_str())
        .opt_text("AllowedValues", d.allowed_values.as_deref())
        .bool("IsModifiable", d.is_modifiable)
        .text("MinimumEngineVersion", &d.minimum_engine_version)
        .text("ChangeType", d.change_type.as_str());
}

fn write_node_type_specific(w: &mut XmlWriter, defs: &[parameter_catalog::NodeTypeSpecificDef]) {
    w.list(
        "CacheNodeTypeSpecificParameters",
        "CacheNodeTypeSpecificParameter",
        defs,
        |w, d| {
            w.text("ParameterName", &d.name)
                .text("Description", &d.description)
                .text("Source", &d.source)
                .text("DataType", d.data_type.as_str())
                .opt_text("AllowedValues", d.allowed_values.as_deref())
                .bool("IsModifiable", d.is_modifiable)
                .text("MinimumEngineVersion", &d.minimum_engine_version)
                .list(
                    "CacheNodeTypeSpecificValues",
                    "CacheNodeTypeSpecificValue",
                    &d.values,
                    |w, (t, v)| {
                        w.text("CacheNodeType", t).text("Value", v);
                    },
                )
                .text("ChangeType", d.change_type.as_str());
        },
    );
}

fn name_only(name: &str) -> String {
    let mut w = XmlWriter::new();
    w.text("CacheParameterGroupName", name);
    w.finish()
}

/// Push changed values to the clusters using the group: immediate ones to the
/// running nodes now, the others as pending until a reboot.
async fn apply(
    cp: &Arc<Inner>,
    region: &str,
    g: &Group,
    changes: &[(String, Option<String>)],
) -> Result<(), ApiError> {
    let effective = effective(cp, region, &g.record.name).await?;
    let mut immediate = Vec::new();
    let mut needs_reboot = false;
    for (name, _) in changes {
        let Some(def) = g.family.param(name) else {
            continue;
        };
        match def.change_type {
            ChangeType::Immediate => {
                if let Some(v) = effective.get(name) {
                    immediate.push((name.clone(), v.clone()));
                }
            }
            ChangeType::RequiresReboot => needs_reboot = true,
        }
    }
    clusters::apply_parameters(cp, region, &g.record.name, &immediate, needs_reboot).await
}

/// A parameter name and value.
type Pair = (String, String);

/// Split changed values into those that apply at once and those that wait for a
/// reboot, by the family's metadata. Unknown names wait for a reboot.
pub(crate) fn split_by_change_type(
    family_name: &str,
    changed: Vec<(String, String)>,
) -> (Vec<Pair>, Vec<Pair>) {
    let family = parameter_catalog::family(family_name);
    changed.into_iter().partition(|(name, _)| {
        family
            .and_then(|f| f.param(name))
            .is_some_and(|d| matches!(d.change_type, ChangeType::Immediate))
    })
}

/// The stored name of an existing group (built-in ones included).
pub(crate) async fn exists(cp: &Inner, region: &str, name: &str) -> Result<String, ApiError> {
    Ok(find(cp, region, name).await?.record.name)
}
