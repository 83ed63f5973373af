//! DescribeCacheEngineVersions over the catalogue.

use crate::catalog::{self, Engine};
use crate::error::ApiError;
use crate::paginate;
use aws_query::{Params, XmlWriter};

pub(crate) fn describe(p: &Params) -> Result<String, ApiError> {
    let engine = p.str("Engine").map(Engine::parse).transpose()?;
    let version = p.str("EngineVersion");
    let family = p.str("CacheParameterGroupFamily");
    let default_only = p.bool("DefaultOnly")?.unwrap_or(false);
    let all = catalog::ENGINE_VERSIONS;
    let items: Vec<_> = all
        .iter()
        .enumerate()
        .filter(|(_, v)| engine.is_none_or(|e| v.engine == e))
        .filter(|(_, v)| {
            version
                .is_none_or(|want| v.version == want || v.version.starts_with(&format!("{want}.")))
        })
        .filter(|(_, v)| family.is_none_or(|f| v.family == f))
        .filter(|(i, v)| {
            // The default is the newest version of its engine.
            !default_only || all[i + 1..].iter().all(|later| later.engine != v.engine)
        })
        .map(|(_, v)| *v)
        .collect();
    let (page, marker) = paginate(items, p, |v| format!("{}-{}", v.engine.as_str(), v.version))?;
    let mut w = XmlWriter::new();
    w.list(
        "CacheEngineVersions",
        "CacheEngineVersion",
        &page,
        |w, v| {
            w.text("Engine", v.engine.as_str())
                .text("EngineVersion", v.version)
                .text("CacheParameterGroupFamily", v.family)
                .text("CacheEngineDescription", v.engine.description())
                .text(
                    "CacheEngineVersionDescription",
                    &format!("{} {}", v.engine.description(), v.version),
                );
        },
    );
    w.opt_text("Marker", marker.as_deref());
    Ok(w.finish())
}
