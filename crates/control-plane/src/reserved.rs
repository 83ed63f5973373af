//! Reserved cache nodes: DescribeReservedCacheNodesOfferings over a static
//! catalogue (every node type of the catalogue × 1 and 3 years × the three
//! payment options × redis/valkey/memcached), PurchaseReservedCacheNodesOffering
//! (recorded per region) and DescribeReservedCacheNodes. Nothing is billed; the
//! prices are illustrative, derived from each node type's memory, not AWS's
//! price list.

use crate::catalog::NODE_TYPES;
use crate::error::ApiError;
use crate::store::ResourceRow;
use crate::{now_ms, paginate, Inner};
use aws_query::{Params, XmlWriter};
use serde::{Deserialize, Serialize};

const KIND: &str = "reserved-node";
const YEAR_SECS: i64 = 31_536_000;
const DURATIONS: [i64; 2] = [YEAR_SECS, 3 * YEAR_SECS];
const OFFERING_TYPES: [&str; 3] = ["No Upfront", "Partial Upfront", "All Upfront"];
const PRODUCTS: [&str; 3] = ["redis", "valkey", "memcached"];
/// ElastiCache's default quota of reserved nodes per region.
const MAX_NODES: i64 = 300;
/// Illustrative on-demand price per GiB of node memory per hour.
const HOURLY_PER_GIB: f64 = 0.0216;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Offering {
    id: String,
    node_type: String,
    duration: i64,
    fixed_price: f64,
    usage_price: f64,
    product: String,
    offering_type: String,
    /// Hourly recurring charge.
    hourly: f64,
}

fn offering_id(node_type: &str, duration: i64, offering: &str, product: &str) -> String {
    // Stable across runs and versions: a UUID-shaped FNV-1a hash of the offering.
    let key = format!("{node_type}|{duration}|{offering}|{product}");
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in key.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn catalogue() -> Vec<Offering> {
    let mut out = Vec::new();
    for t in NODE_TYPES {
        let on_demand = t.memory_mib as f64 / 1024.0 * HOURLY_PER_GIB;
        for duration in DURATIONS {
            let years = duration / YEAR_SECS;
            let hours = (duration / 3600) as f64;
            // Longer terms and more upfront pay less in total, as AWS's do.
            let total_factor = if years == 1 { 0.68 } else { 0.45 };
            for offering in OFFERING_TYPES {
                let (discount, upfront_share) = match offering {
                    "No Upfront" => (1.0, 0.0),
                    "Partial Upfront" => (0.96, 0.5),
                    _ => (0.94, 1.0),
                };
                let total = on_demand * hours * total_factor * discount;
                let fixed = round2(total * upfront_share);
                let hourly = ((total - fixed) / hours * 10_000.0).round() / 10_000.0;
                for product in PRODUCTS {
                    out.push(Offering {
                        id: offering_id(t.name, duration, offering, product),
                        node_type: t.name.to_string(),
                        duration,
                        fixed_price: fixed,
                        usage_price: 0.0,
                        product: product.to_string(),
                        offering_type: offering.to_string(),
                        hourly,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// `Duration` filter: years ("1", "3") or seconds ("31536000", "94608000").
fn duration_filter(p: &Params) -> Result<Option<i64>, ApiError> {
    let Some(d) = p.str("Duration") else {
        return Ok(None);
    };
    match d {
        "1" | "31536000" => Ok(Some(YEAR_SECS)),
        "3" | "94608000" => Ok(Some(3 * YEAR_SECS)),
        other => Err(ApiError::InvalidParameterValue(format!(
            "Invalid Duration {other}: 1, 3, 31536000 or 94608000."
        ))),
    }
}

fn offering_type_filter(p: &Params) -> Result<Option<&str>, ApiError> {
    match p.str("OfferingType") {
        None => Ok(None),
        Some(t) if OFFERING_TYPES.contains(&t) => Ok(Some(t)),
        // Older API versions' names, which AWS still accepts.
        Some(t @ ("Heavy Utilization" | "Medium Utilization" | "Light Utilization")) => Ok(Some(t)),
        Some(t) => Err(ApiError::InvalidParameterValue(format!(
            "Invalid OfferingType {t}."
        ))),
    }
}

fn matches(o: &Offering, p: &Params, duration: Option<i64>, ot: Option<&str>) -> bool {
    p.str("CacheNodeType").is_none_or(|t| o.node_type == t)
        && duration.is_none_or(|d| o.duration == d)
        && p.str("ProductDescription").is_none_or(|d| o.product == d)
        && ot.is_none_or(|t| o.offering_type == t)
}

pub(crate) fn describe_offerings(p: &Params) -> Result<String, ApiError> {
    let duration = duration_filter(p)?;
    let ot = offering_type_filter(p)?;
    let all = catalogue();
    let items: Vec<Offering> = match p.str("ReservedCacheNodesOfferingId") {
        Some(id) => {
            let o = all
                .into_iter()
                .find(|o| o.id == id)
                .ok_or_else(|| ApiError::ReservedCacheNodesOfferingNotFound(id.to_string()))?;
            vec![o]
        }
        None => all,
    }
    .into_iter()
    .filter(|o| matches(o, p, duration, ot))
    .collect();
    let (page, marker) = paginate(items, p, |o| o.id.clone())?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.list(
        "ReservedCacheNodesOfferings",
        "ReservedCacheNodesOffering",
        &page,
        |w, o| {
            w.text("ReservedCacheNodesOfferingId", &o.id)
                .text("CacheNodeType", &o.node_type)
                .int("Duration", o.duration)
                .text("FixedPrice", &o.fixed_price.to_string())
                .text("UsagePrice", &o.usage_price.to_string())
                .text("ProductDescription", &o.product)
                .text("OfferingType", &o.offering_type);
            recurring(w, o);
        },
    );
    Ok(w.finish())
}

fn recurring(w: &mut XmlWriter, o: &Offering) {
    let charges: Vec<f64> = if o.hourly > 0.0 {
        vec![o.hourly]
    } else {
        Vec::new()
    };
    w.list("RecurringCharges", "RecurringCharge", charges, |w, c| {
        w.text("RecurringChargeAmount", &c.to_string())
            .text("RecurringChargeFrequency", "Hourly");
    });
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reservation {
    offering: Offering,
    count: i64,
}

pub(crate) async fn purchase(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let offering_id = p.required("ReservedCacheNodesOfferingId")?;
    let offering = catalogue()
        .into_iter()
        .find(|o| o.id == offering_id)
        .ok_or_else(|| ApiError::ReservedCacheNodesOfferingNotFound(offering_id.to_string()))?;
    let count = p.int("CacheNodeCount")?.unwrap_or(1);
    if count < 1 {
        return Err(ApiError::InvalidParameterValue(
            "CacheNodeCount must be a positive integer.".into(),
        ));
    }
    let id = match p.str("ReservedCacheNodeId") {
        Some(id) => {
            let ok = !id.is_empty()
                && id.len() <= 255
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(ApiError::InvalidParameterValue(format!(
                    "Invalid ReservedCacheNodeId {id}."
                )));
            }
            id.to_string()
        }
        None => format!("ri-{}", &offering_id_for_purchase(offering_id)),
    };
    let tags = p.tags("Tags")?.unwrap_or_default();
    crate::clusters::check_tag_count(tags.len())?;
    let _guard = cp.lock.lock().await;
    if cp.store.resource(region, KIND, &id).await?.is_some() {
        return Err(ApiError::ReservedCacheNodeAlreadyExists(id));
    }
    let mut total = count;
    for r in cp.store.resources(Some(region), KIND).await? {
        let res: Reservation = serde_json::from_str(&r.spec)?;
        total += res.count;
    }
    if total > MAX_NODES {
        return Err(ApiError::ReservedCacheNodeQuotaExceeded(format!(
            "A region can have at most {MAX_NODES} reserved cache nodes."
        )));
    }
    let row = ResourceRow {
        region: region.to_string(),
        kind: KIND.to_string(),
        name: id.clone(),
        status: "active".to_string(),
        created_ms: now_ms(),
        spec: serde_json::to_string(&Reservation { offering, count })?,
    };
    cp.store.put_resource(&row).await?;
    cp.store
        .put_tags(&cp.arn(region, "reserved-instance", &id), &tags)
        .await?;
    let mut w = XmlWriter::new();
    w.element("ReservedCacheNode", |w| write_reservation(cp, w, &row));
    Ok(w.finish())
}

/// A fresh id for a purchase without `ReservedCacheNodeId`.
fn offering_id_for_purchase(offering: &str) -> String {
    let stamp = format!("{offering}|{}", now_ms());
    offering_id(&stamp, 0, "", "")
        .split('-')
        .take(2)
        .collect::<Vec<_>>()
        .join("")
}

fn write_reservation(cp: &Inner, w: &mut XmlWriter, row: &ResourceRow) {
    let Ok(r) = serde_json::from_str::<Reservation>(&row.spec) else {
        return;
    };
    let o = &r.offering;
    w.text("ReservedCacheNodeId", &row.name)
        .text("ReservedCacheNodesOfferingId", &o.id)
        .text("CacheNodeType", &o.node_type)
        .text("StartTime", &crate::timestamp(row.created_ms))
        .int("Duration", o.duration)
        .text("FixedPrice", &(o.fixed_price * r.count as f64).to_string())
        .text("UsagePrice", &o.usage_price.to_string())
        .int("CacheNodeCount", r.count)
        .text("ProductDescription", &o.product)
        .text("OfferingType", &o.offering_type)
        .text("State", &row.status);
    recurring(w, o);
    w.text(
        "ReservationARN",
        &cp.arn(&row.region, "reserved-instance", &row.name),
    );
}

pub(crate) async fn describe(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let duration = duration_filter(p)?;
    let ot = offering_type_filter(p)?;
    let rows = match p.str("ReservedCacheNodeId") {
        Some(id) => vec![cp
            .store
            .resource(region, KIND, id)
            .await?
            .ok_or_else(|| ApiError::ReservedCacheNodeNotFound(id.to_string()))?],
        None => cp.store.resources(Some(region), KIND).await?,
    };
    let mut items = Vec::new();
    for row in rows {
        let r: Reservation = serde_json::from_str(&row.spec)?;
        if matches(&r.offering, p, duration, ot)
            && p.str("ReservedCacheNodesOfferingId")
                .is_none_or(|id| r.offering.id == id)
        {
            items.push(row);
        }
    }
    let (page, marker) = paginate(items, p, |r| r.name.clone())?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.list("ReservedCacheNodes", "ReservedCacheNode", &page, |w, r| {
        write_reservation(cp, w, r)
    });
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_ids_are_unique_and_stable() {
        let c = catalogue();
        assert_eq!(c.len(), NODE_TYPES.len() * 2 * 3 * 3);
        let mut ids: Vec<_> = c.iter().map(|o| o.id.clone()).collect();
        ids.dedup();
        assert_eq!(ids.len(), c.len());
        assert_eq!(
            offering_id("cache.t3.micro", YEAR_SECS, "No Upfront", "redis"),
            offering_id("cache.t3.micro", YEAR_SECS, "No Upfront", "redis")
        );
        // All Upfront has no hourly charge; No Upfront has no fixed price.
        let all = c.iter().find(|o| o.offering_type == "All Upfront").unwrap();
        assert_eq!(all.hourly, 0.0);
        let none = c.iter().find(|o| o.offering_type == "No Upfront").unwrap();
        assert_eq!(none.fixed_price, 0.0);
    }
}
