//! `stats` and its sub-commands with memcached 1.6's field names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::node::Node;
use crate::store::{slab_class, Stats};
use crate::text::Tokens;

fn thread_cpu() -> (f64, f64) {
    // utime/stime of the node's thread (the whole node runs on it).
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = 100.0;
    let u = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    let st = f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    (u, st)
}

/// (name, value) pairs of the general `stats` answer.
pub fn general(node: &Node) -> Vec<(String, String)> {
    let st = &node.store;
    let s: &Stats = &st.stats;
    let (u, sy) = thread_cpu();
    let mut v: Vec<(String, String)> = Vec::with_capacity(96);
    let mut p = |k: &str, val: String| v.push((k.to_string(), val));
    p("pid", std::process::id().to_string());
    p("uptime", node.start.elapsed().as_secs().to_string());
    p("time", st.now.to_string());
    p("version", node.version.clone());
    p("libevent", "2.1.12-stable".into());
    p("pointer_size", "64".into());
    p("rusage_user", format!("{u:.6}"));
    p("rusage_system", format!("{sy:.6}"));
    p("max_connections", "1024".into());
    p("curr_connections", node.curr_connections.to_string());
    p("total_connections", s.total_connections.to_string());
    p("rejected_connections", "0".into());
    p("connection_structures", node.curr_connections.to_string());
    p("response_obj_oom", "0".into());
    p("response_obj_count", "1".into());
    p("response_obj_bytes", "16384".into());
    p("read_buf_count", node.curr_connections.to_string());
    p(
        "read_buf_bytes",
        (node.curr_connections * 16384).to_string(),
    );
    p("read_buf_bytes_free", "0".into());
    p("read_buf_oom", "0".into());
    p("reserved_fds", "20".into());
    p("cmd_get", s.cmd_get.to_string());
    p("cmd_set", s.cmd_set.to_string());
    p("cmd_flush", s.cmd_flush.to_string());
    p("cmd_touch", s.cmd_touch.to_string());
    p("cmd_meta", s.cmd_meta.to_string());
    p("get_hits", s.get_hits.to_string());
    p("get_misses", s.get_misses.to_string());
    p("get_expired", s.get_expired.to_string());
    p("get_flushed", s.get_flushed.to_string());
    p("delete_misses", s.delete_misses.to_string());
    p("delete_hits", s.delete_hits.to_string());
    p("incr_misses", s.incr_misses.to_string());
    p("incr_hits", s.incr_hits.to_string());
    p("decr_misses", s.decr_misses.to_string());
    p("decr_hits", s.decr_hits.to_string());
    p("cas_misses", s.cas_misses.to_string());
    p("cas_hits", s.cas_hits.to_string());
    p("cas_badval", s.cas_badval.to_string());
    p("touch_hits", s.touch_hits.to_string());
    p("touch_misses", s.touch_misses.to_string());
    p("store_too_large", s.store_too_large.to_string());
    p("store_no_memory", s.store_no_memory.to_string());
    p("auth_cmds", "0".into());
    p("auth_errors", "0".into());
    p("bytes_read", s.bytes_read.to_string());
    p("bytes_written", s.bytes_written.to_string());
    p(
        "limit_maxbytes",
        st.settings.memory_limit.load(Ordering::Relaxed).to_string(),
    );
    p("accepting_conns", "1".into());
    p("listen_disabled_num", "0".into());
    p("time_in_listen_disabled_us", "0".into());
    p("threads", "1".into());
    p("conn_yields", "0".into());
    let cap = st.table_capacity().max(1 << 16);
    let hp = (usize::BITS - cap.leading_zeros() - 1).max(16);
    p("hash_power_level", hp.to_string());
    p("hash_bytes", ((1usize << hp) * 8).to_string());
    p("hash_is_expanding", "0".into());
    for k in [
        "slab_reassign_rescues",
        "slab_reassign_chunk_rescues",
        "slab_reassign_evictions_nomem",
        "slab_reassign_inline_reclaim",
        "slab_reassign_busy_items",
        "slab_reassign_busy_deletes",
        "slab_reassign_running",
        "slabs_moved",
        "lru_crawler_running",
    ] {
        p(k, "0".into());
    }
    p("lru_crawler_starts", "0".into());
    p("lru_maintainer_juggles", "0".into());
    for k in [
        "malloc_fails",
        "log_worker_dropped",
        "log_worker_written",
        "log_watcher_skipped",
        "log_watcher_sent",
        "log_watchers",
        "unexpected_napi_ids",
        "round_robin_fallback",
    ] {
        p(k, "0".into());
    }
    p("bytes", st.mem_used.to_string());
    p("curr_items", st.curr_items.to_string());
    p("total_items", s.total_items.to_string());
    p("slab_global_page_pool", "0".into());
    p("expired_unfetched", s.expired_unfetched.to_string());
    p("evicted_unfetched", s.evicted_unfetched.to_string());
    p("evicted_active", "0".into());
    p("evictions", s.evictions.to_string());
    p("reclaimed", s.reclaimed.to_string());
    p("crawler_reclaimed", s.crawler_reclaimed.to_string());
    for k in [
        "crawler_items_checked",
        "lrutail_reflocked",
        "moves_to_cold",
        "moves_to_warm",
        "moves_within_lru",
        "direct_reclaims",
        "lru_bumps_dropped",
    ] {
        p(k, "0".into());
    }
    v
}

pub fn settings(node: &Node) -> Vec<(String, String)> {
    let st = &node.store;
    let set = &st.settings;
    let mut v: Vec<(String, String)> = Vec::new();
    let mut p = |k: &str, val: String| v.push((k.to_string(), val));
    p(
        "maxbytes",
        set.memory_limit.load(Ordering::Relaxed).to_string(),
    );
    p("maxconns", "1024".into());
    p("tcpport", node.listen_addr.port().to_string());
    p("udpport", "0".into());
    p("inter", node.listen_addr.ip().to_string());
    p("verbosity", node.verbosity.to_string());
    p("oldest", "0".into());
    p(
        "evictions",
        if set.evict.load(Ordering::Relaxed) {
            "on"
        } else {
            "off"
        }
        .into(),
    );
    p("domain_socket", "NULL".into());
    p("umask", "700".into());
    p("shutdown_command", "no".into());
    p("growth_factor", "1.25".into());
    p("chunk_size", "48".into());
    p("num_threads", "1".into());
    p("num_threads_per_udp", "1".into());
    p("stat_key_prefix", ":".into());
    p("detail_enabled", "no".into());
    p("reqs_per_event", "20".into());
    p("cas_enabled", "yes".into());
    p("tcp_backlog", "1024".into());
    p("binding_protocol", "auto-negotiate".into());
    p("auth_enabled_sasl", "no".into());
    p("auth_enabled_ascii", "no".into());
    let max = set.max_item_size.load(Ordering::Relaxed);
    p("item_size_max", max.to_string());
    p("maxconns_fast", "yes".into());
    p("hashpower_init", "0".into());
    p("slab_reassign", "yes".into());
    p("slab_automove", "1".into());
    p("slab_automove_ratio", "0.80".into());
    p("slab_automove_window", "30".into());
    p("slab_chunk_max", (max / 2).to_string());
    p("lru_crawler", "yes".into());
    p("lru_crawler_sleep", "100".into());
    p("lru_crawler_tocrawl", "0".into());
    p("tail_repair_time", "0".into());
    p("flush_enabled", "yes".into());
    p("dump_enabled", "yes".into());
    p("hash_algorithm", "murmur3".into());
    p("lru_maintainer_thread", "yes".into());
    p("lru_segmented", "yes".into());
    p("hot_lru_pct", "20".into());
    p("warm_lru_pct", "40".into());
    p("hot_max_factor", "0.20".into());
    p("warm_max_factor", "2.00".into());
    p("temp_lru", "no".into());
    p("temporary_ttl", "61".into());
    p("idle_timeout", "0".into());
    p("watcher_logbuf_size", "262144".into());
    p("worker_logbuf_size", "65536".into());
    p("read_buf_mem_limit", "0".into());
    p("track_sizes", "no".into());
    p("inline_ascii_response", "no".into());
    p("ext_item_size", "512".into());
    p("ext_item_age", "4294967295".into());
    p("ext_low_ttl", "0".into());
    p("ext_recache_rate", "2000".into());
    p("ext_wbuf_size", "4194304".into());
    p("ext_compact_under", "0".into());
    p("ext_drop_under", "0".into());
    p("ext_max_sleep", "1000000".into());
    p("ext_max_frag", "0.80".into());
    p("slab_automove_freeratio", "0.010".into());
    p("ext_drop_unread", "no".into());
    p("ssl_enabled", "no".into());
    p("ssl_chain_cert", "(null)".into());
    p("ssl_key", "(null)".into());
    p("ssl_verify_mode", "0".into());
    p("ssl_keyformat", "1".into());
    p("ssl_ciphers", "NULL".into());
    p("ssl_ca_cert", "NULL".into());
    p("ssl_wbuf_size", "16384".into());
    p("ssl_session_cache", "no".into());
    p("ssl_kernel_tls", "no".into());
    p("ssl_min_version", "tlsv1.2".into());
    p("num_napi_ids", "(null)".into());
    p("memory_file", "(null)".into());
    v
}

struct ClassAgg {
    number: u64,
    requested: u64,
    oldest: u32,
}

fn classes(node: &Node) -> BTreeMap<u32, (u64, ClassAgg)> {
    let mut m: BTreeMap<u32, (u64, ClassAgg)> = BTreeMap::new();
    let now = node.store.now;
    node.store.for_each_item(|it| {
        let total = it.ntotal();
        let (cls, size) = slab_class(total);
        let e = m.entry(cls).or_insert((
            size,
            ClassAgg {
                number: 0,
                requested: 0,
                oldest: now,
            },
        ));
        e.1.number += 1;
        e.1.requested += total;
        e.1.oldest = e.1.oldest.min(it.time);
    });
    m
}

pub fn items(node: &Node) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let now = node.store.now;
    for (cls, (_size, a)) in classes(node) {
        let age = now.saturating_sub(a.oldest);
        let fields: [(&str, u64); 28] = [
            ("number", a.number),
            ("number_hot", 0),
            ("number_warm", 0),
            ("number_cold", a.number),
            ("age_hot", 0),
            ("age_warm", 0),
            ("age", age as u64),
            ("mem_requested", a.requested),
            ("evicted", 0),
            ("evicted_nonzero", 0),
            ("evicted_time", 0),
            ("outofmemory", 0),
            ("tailrepairs", 0),
            ("reclaimed", 0),
            ("expired_unfetched", 0),
            ("evicted_unfetched", 0),
            ("evicted_active", 0),
            ("crawler_reclaimed", 0),
            ("crawler_items_checked", 0),
            ("lrutail_reflocked", 0),
            ("moves_to_cold", 0),
            ("moves_to_warm", 0),
            ("moves_within_lru", 0),
            ("direct_reclaims", 0),
            ("hits_to_hot", 0),
            ("hits_to_warm", 0),
            ("hits_to_cold", 0),
            ("hits_to_temp", 0),
        ];
        for (k, val) in fields {
            v.push((format!("items:{cls}:{k}"), val.to_string()));
        }
    }
    v
}

pub fn slabs(node: &Node) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut active = 0;
    let mut malloced = 0u64;
    for (cls, (size, a)) in classes(node) {
        active += 1;
        let per_page = (1024 * 1024 / size).max(1);
        let pages = a.number.div_ceil(per_page).max(1);
        malloced += pages * 1024 * 1024;
        let total = pages * per_page;
        let fields: [(&str, u64); 15] = [
            ("chunk_size", size),
            ("chunks_per_page", per_page),
            ("total_pages", pages),
            ("total_chunks", total),
            ("used_chunks", a.number),
            ("free_chunks", total - a.number),
            ("free_chunks_end", 0),
            ("get_hits", 0),
            ("cmd_set", 0),
            ("delete_hits", 0),
            ("incr_hits", 0),
            ("decr_hits", 0),
            ("cas_hits", 0),
            ("cas_badval", 0),
            ("touch_hits", 0),
        ];
        for (k, val) in fields {
            v.push((format!("{cls}:{k}"), val.to_string()));
        }
    }
    v.push(("active_slabs".into(), active.to_string()));
    v.push(("total_malloced".into(), malloced.to_string()));
    v
}

fn conns(node: &Node) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let now = node.store.now;
    let la = node.listen_addr;
    v.push(("0:addr".into(), format!("tcp:{la}")));
    v.push(("0:state".into(), "conn_listening".into()));
    v.push(("0:secs_since_last_cmd".into(), "0".into()));
    for (id, c) in &node.conns {
        v.push((format!("{id}:addr"), format!("tcp:{}", c.peer)));
        v.push((format!("{id}:listen_addr"), format!("tcp:{la}")));
        v.push((format!("{id}:state"), "conn_parse_cmd".into()));
        v.push((
            format!("{id}:secs_since_last_cmd"),
            now.saturating_sub(c.last_cmd).to_string(),
        ));
    }
    v
}

fn emit(out: &mut Vec<u8>, v: &[(String, String)]) {
    let mut s = String::with_capacity(v.len() * 32);
    for (k, val) in v {
        let _ = write!(s, "STAT {k} {val}\r\n");
    }
    s.push_str("END\r\n");
    out.extend_from_slice(s.as_bytes());
}

/// Stats for the binary protocol (name → value) or None for an unknown group.
pub fn group(node: &mut Node, name: &[u8]) -> Option<Vec<(String, String)>> {
    group_exact(node, name)
}

/// Binary `stat`: memcached matches "reset" and "settings" by prefix.
pub fn group_binary(node: &mut Node, name: &[u8]) -> Option<Vec<(String, String)>> {
    if name.starts_with(b"reset") {
        return group_exact(node, b"reset");
    }
    if name.starts_with(b"settings") {
        return group_exact(node, b"settings");
    }
    group_exact(node, name)
}

fn group_exact(node: &mut Node, name: &[u8]) -> Option<Vec<(String, String)>> {
    Some(match name {
        b"" => general(node),
        b"settings" => settings(node),
        b"items" => items(node),
        b"slabs" => slabs(node),
        b"conns" => conns(node),
        b"sizes" => vec![("sizes_status".into(), "disabled".into())],
        b"reset" => {
            let tc = node.store.stats.total_connections;
            node.store.stats = Stats {
                total_connections: tc,
                total_items: 0,
                ..Default::default()
            };
            vec![]
        }
        _ => return None,
    })
}

pub fn process_stats(node: &mut Node, t: &Tokens, out: &mut Vec<u8>) {
    if t.n < 2 {
        emit(out, &general(node));
        return;
    }
    let sub = t.toks[1];
    match sub {
        b"reset" => {
            group(node, b"reset");
            out.extend_from_slice(b"RESET\r\n");
        }
        b"cachedump" => {
            let (Some(cls), Some(limit)) = (
                crate::util::safe_strtoul32(t.get(2)),
                crate::util::safe_strtoul32(t.get(3)),
            ) else {
                out.extend_from_slice(b"CLIENT_ERROR bad command line\r\n");
                return;
            };
            let mut s = String::new();
            let mut n = 0u32;
            node.store.for_each_item(|it| {
                if (limit != 0 && n >= limit) || s.len() > 2 * 1024 * 1024 {
                    return;
                }
                if slab_class(it.ntotal()).0 == cls {
                    n += 1;
                    let _ = write!(
                        s,
                        "ITEM {} [{} b; {} s]\r\n",
                        String::from_utf8_lossy(it.key()),
                        it.value().len(),
                        it.exptime
                    );
                }
            });
            s.push_str("END\r\n");
            out.extend_from_slice(s.as_bytes());
        }
        b"detail" => {
            if t.n < 3 {
                out.extend_from_slice(b"CLIENT_ERROR usage: stats detail on|off|dump\r\n");
            } else {
                match t.toks[2] {
                    b"on" => out.extend_from_slice(b"OK\r\n"),
                    b"off" => out.extend_from_slice(b"OK\r\n"),
                    b"dump" => out.extend_from_slice(b"END\r\n"),
                    _ => out.extend_from_slice(b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
                }
            }
        }
        _ => match group(node, sub) {
            Some(v) => emit(out, &v),
            None => out.extend_from_slice(b"ERROR\r\n"),
        },
    }
}
