//! Cluster commands: CLUSTER (INFO, MYID, MYSHARDID, NODES, SLOTS, SHARDS, KEYSLOT,
//! COUNTKEYSINSLOT, GETKEYSINSLOT, ADDSLOTS[RANGE], DELSLOTS[RANGE], FLUSHSLOTS, SETSLOT,
//! RESET, SAVECONFIG, BUMPEPOCH, SET-CONFIG-EPOCH, COUNT-FAILURE-REPORTS, FORGET, REPLICAS,
//! LINKS, HELP), ASKING, READONLY, READWRITE. Replies and error texts are Valkey's.
//!
//! CLUSTER runs as a hop command: most subcommands answer from the client's shard; those
//! that need keys of a slot continue on the shard that owns the slot (`slot % shards`);
//! FLUSHSLOTS visits every shard; RESET runs at the cancel barrier.

use super::keyspace::{hop, reply};
use super::server::{help_reply, subcommand, subcommand_error};
use super::{Ctx, Partial, errors, parse_i64};
use crate::cluster::nodes_conf::node_line;
use crate::cluster::{CLUSTER_DISABLED, ClusterState, NO_OWNER, Node};
use percore_engine::slot::{SLOTS, key_hash_slot, shard_of_slot};
use percore_net::resp::ReplyWriter;
use std::fmt::Write as _;

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the node's shard id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@bus-port[,hostname]> <flags> <primary> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, primary and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];

fn error(ctx: &Ctx, text: &str) -> Partial {
    reply(ctx, |w| w.error(text))
}

fn ok(ctx: &Ctx) -> Partial {
    reply(ctx, super::server::reply_ok)
}

/// Valkey's `getSlotOrReply`.
fn slot_arg(a: &[u8]) -> Result<u16, &'static str> {
    parse_i64(a)
        .filter(|s| (0..i64::from(SLOTS)).contains(s))
        .map(|s| s as u16)
        .ok_or("ERR Invalid or out of range slot")
}

/// The cluster state as shown to clients: myself's address and ports from the current
/// configuration.
fn view(ctx: &Ctx) -> Option<ClusterState> {
    let cluster = ctx.shard.shared.cluster.as_ref()?;
    let mut st = cluster.snapshot();
    st.apply_config(&ctx.shard.cfg, ctx.shard.shared.tcp_port());
    Some(st)
}

/// Applies a change to the cluster state and writes nodes.conf before the reply.
fn change<T>(
    ctx: &Ctx,
    f: impl FnOnce(&mut ClusterState) -> Result<T, String>,
) -> Result<T, String> {
    let shared = &ctx.shard.shared;
    let cluster = shared.cluster.as_ref().ok_or(CLUSTER_DISABLED)?;
    cluster.change(&ctx.shard.cfg, shared.tcp_port(), shared, f)
}

fn ok_or_error(ctx: &Ctx, r: Result<(), String>) -> Partial {
    match r {
        Ok(()) => ok(ctx),
        Err(e) => error(ctx, &e),
    }
}

/// CLUSTER <subcommand> ...
pub fn cluster_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some(sub) = subcommand(argv, ctx.proto) else {
        return reply(ctx, |w| subcommand_error(argv, w));
    };
    if ctx.shard.shared.cluster.is_none() {
        return error(ctx, CLUSTER_DISABLED);
    }
    let sub = sub.trim_start_matches("cluster|");
    match sub {
        "help" => reply(ctx, |w| help_reply(w, "CLUSTER", HELP)),
        "info" => {
            let text = info(ctx);
            reply(ctx, |w| w.verbatim("txt", text.as_bytes()))
        }
        "myid" => {
            let id = view(ctx).map(|st| st.me().id.clone()).unwrap_or_default();
            reply(ctx, |w| w.bulk(id.as_bytes()))
        }
        "myshardid" => {
            let id = view(ctx)
                .map(|st| st.me().shard_id.clone())
                .unwrap_or_default();
            reply(ctx, |w| w.bulk(id.as_bytes()))
        }
        "nodes" => {
            let st = view(ctx).expect("cluster mode");
            let mut text = String::new();
            for n in 0..st.nodes.len() {
                text.push_str(&node_line(&st, n, false));
                text.push('\n');
            }
            reply(ctx, |w| w.verbatim("txt", text.as_bytes()))
        }
        "slots" => {
            let st = view(ctx).expect("cluster mode");
            reply(ctx, |w| slots(&st, w))
        }
        "shards" => {
            let st = view(ctx).expect("cluster mode");
            reply(ctx, |w| shards(&st, w))
        }
        "links" => reply(ctx, |w| w.array(0)),
        "keyslot" => {
            let slot = key_hash_slot(argv[2]);
            reply(ctx, |w| w.int(i64::from(slot)))
        }
        "countkeysinslot" => {
            let Some(slot) = parse_i64(argv[2]) else {
                return error(ctx, errors::NOT_INTEGER);
            };
            if !(0..i64::from(SLOTS)).contains(&slot) {
                return error(ctx, "ERR Invalid slot");
            }
            hop(
                shard_of_slot(slot as u16, ctx.shard.shards),
                countkeysinslot_step,
                argv.iter().copied(),
            )
        }
        "getkeysinslot" => {
            let (Some(slot), Some(count)) = (parse_i64(argv[2]), parse_i64(argv[3])) else {
                return error(ctx, errors::NOT_INTEGER);
            };
            if !(0..i64::from(SLOTS)).contains(&slot) || count < 0 {
                return error(ctx, "ERR Invalid slot or number of keys");
            }
            hop(
                shard_of_slot(slot as u16, ctx.shard.shards),
                getkeysinslot_step,
                argv.iter().copied(),
            )
        }
        "addslots" | "delslots" => addslots(ctx, argv, sub == "delslots"),
        "addslotsrange" | "delslotsrange" => addslotsrange(ctx, argv, sub == "delslotsrange"),
        "flushslots" => hop(0, flushslots_step, argv.iter().copied()),
        "setslot" => setslot(ctx, argv),
        "bumpepoch" => match change(ctx, |st| {
            let bumped = st.bump_epoch();
            Ok((bumped, st.me().config_epoch))
        }) {
            Ok((bumped, epoch)) => {
                if bumped {
                    ctx.shard
                        .shared
                        .notice(&format!("New configEpoch set to {epoch}"));
                }
                let word = if bumped { "BUMPED" } else { "STILL" };
                reply(ctx, |w| w.simple(&format!("{word} {epoch}")))
            }
            Err(e) => error(ctx, &e),
        },
        "set-config-epoch" => set_config_epoch(ctx, argv),
        "saveconfig" => {
            let r = change(ctx, |_| Ok(()));
            ok_or_error(ctx, r)
        }
        "count-failure-reports" => {
            let known = view(ctx).is_some_and(|st| st.find(argv[2]).is_some());
            if known {
                // No bus, so no other node ever reports a failure.
                reply(ctx, |w| w.int(0))
            } else {
                error(ctx, &unknown_node(argv[2]))
            }
        }
        "forget" => forget(ctx, argv),
        "replicas" | "slaves" => replicas(ctx, argv),
        "reset" => reset(ctx, argv),
        _ => reply(ctx, |w| subcommand_error(argv, w)),
    }
}

fn unknown_node(id: &[u8]) -> String {
    format!("ERR Unknown node {}", String::from_utf8_lossy(id))
}

/// `genClusterInfoString` (Valkey 9.0 fields; no bus, so no message counters).
fn info(ctx: &Ctx) -> String {
    let st = view(ctx).expect("cluster mode");
    let ok = st.is_ok(ctx.shard.cfg.cluster_require_full_coverage);
    let assigned = st.owner.iter().filter(|&&o| o != NO_OWNER).count();
    let failed = |f: u16| st.nodes.iter().filter(|n| n.flags & f != 0).count();
    let voting = |f: u16| {
        (0..st.nodes.len())
            .filter(|&i| {
                st.nodes[i].is_primary()
                    && st.nodes[i].flags & f != 0
                    && st.owner.contains(&(i as u16))
            })
            .count()
    };
    let (fail, pfail) = (crate::cluster::flags::FAIL, crate::cluster::flags::PFAIL);
    let (mut slots_fail, mut slots_pfail) = (0usize, 0usize);
    for &o in st.owner.iter().filter(|&&o| o != NO_OWNER) {
        let f = st.nodes[usize::from(o)].flags;
        if f & fail != 0 {
            slots_fail += 1;
        } else if f & pfail != 0 {
            slots_pfail += 1;
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "cluster_state:{}\r\n\
         cluster_slots_assigned:{assigned}\r\n\
         cluster_slots_ok:{}\r\n\
         cluster_slots_pfail:{slots_pfail}\r\n\
         cluster_slots_fail:{slots_fail}\r\n\
         cluster_nodes_pfail:{}\r\n\
         cluster_nodes_fail:{}\r\n\
         cluster_voting_nodes_pfail:{}\r\n\
         cluster_voting_nodes_fail:{}\r\n\
         cluster_known_nodes:{}\r\n\
         cluster_size:{}\r\n\
         cluster_current_epoch:{}\r\n\
         cluster_my_epoch:{}\r\n\
         cluster_stats_messages_sent:0\r\n\
         cluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n",
        if ok { "ok" } else { "fail" },
        assigned - slots_fail - slots_pfail,
        failed(pfail),
        failed(fail),
        voting(pfail),
        voting(fail),
        st.nodes.len(),
        st.size(),
        st.current_epoch,
        epoch_of(&st, st.myself),
    );
    s
}

/// A node's epoch as CLUSTER INFO/NODES show it: a replica shows its primary's.
fn epoch_of(st: &ClusterState, n: usize) -> u64 {
    st.nodes[n]
        .primary
        .as_deref()
        .and_then(|p| st.find(p.as_bytes()))
        .map_or(st.nodes[n].config_epoch, |p| st.nodes[p].config_epoch)
}

/// `[start, end]` runs of slots with the same owner.
fn owner_runs(st: &ClusterState) -> Vec<(u16, u16, usize)> {
    let mut runs = Vec::new();
    let mut start = 0usize;
    for s in 1..=usize::from(SLOTS) {
        if s == usize::from(SLOTS) || st.owner[s] != st.owner[start] {
            if st.owner[start] != NO_OWNER {
                runs.push((start as u16, (s - 1) as u16, usize::from(st.owner[start])));
            }
            start = s;
        }
    }
    runs
}

/// CLUSTER SLOTS: `[start, end, [ip, port, id, {}]]` per run (no replicas).
fn slots(st: &ClusterState, w: &mut ReplyWriter) {
    let runs = owner_runs(st);
    w.array(runs.len());
    for (a, b, n) in runs {
        let node = &st.nodes[n];
        w.array(3);
        w.int(i64::from(a));
        w.int(i64::from(b));
        w.array(4);
        w.bulk(node.ip.as_bytes());
        w.int(i64::from(node.port));
        w.bulk(node.id.as_bytes());
        if node.hostname.is_empty() {
            w.map(0);
        } else {
            w.map(1);
            w.bulk(b"hostname");
            w.bulk(node.hostname.as_bytes());
        }
    }
}

/// CLUSTER SHARDS: per shard id, its slot ranges and its nodes.
fn shards(st: &ClusterState, w: &mut ReplyWriter) {
    let mut ids: Vec<&str> = Vec::new();
    for n in &st.nodes {
        if !ids.contains(&n.shard_id.as_str()) {
            ids.push(&n.shard_id);
        }
    }
    let runs = owner_runs(st);
    w.array(ids.len());
    for id in ids {
        let members: Vec<usize> = (0..st.nodes.len())
            .filter(|&i| st.nodes[i].shard_id == id)
            .collect();
        let ranges: Vec<(u16, u16)> = runs
            .iter()
            .filter(|(_, _, n)| members.contains(n))
            .map(|&(a, b, _)| (a, b))
            .collect();
        w.map(2);
        w.bulk(b"slots");
        w.array(ranges.len() * 2);
        for (a, b) in ranges {
            w.int(i64::from(a));
            w.int(i64::from(b));
        }
        w.bulk(b"nodes");
        w.array(members.len());
        for i in members {
            shard_node(&st.nodes[i], w);
        }
    }
}

fn shard_node(node: &Node, w: &mut ReplyWriter) {
    let mut fields = 6;
    fields += usize::from(node.port != 0) + usize::from(node.tls_port != 0);
    fields += usize::from(!node.hostname.is_empty());
    w.map(fields);
    w.bulk(b"id");
    w.bulk(node.id.as_bytes());
    if node.port != 0 {
        w.bulk(b"port");
        w.int(i64::from(node.port));
    }
    if node.tls_port != 0 {
        w.bulk(b"tls-port");
        w.int(i64::from(node.tls_port));
    }
    w.bulk(b"ip");
    w.bulk(node.ip.as_bytes());
    w.bulk(b"endpoint");
    w.bulk(node.ip.as_bytes());
    if !node.hostname.is_empty() {
        w.bulk(b"hostname");
        w.bulk(node.hostname.as_bytes());
    }
    w.bulk(b"role");
    w.bulk(if node.is_primary() {
        b"master"
    } else {
        b"replica"
    });
    w.bulk(b"replication-offset");
    w.int(0);
    w.bulk(b"health");
    let health: &[u8] = if node.flags & crate::cluster::flags::FAIL != 0 {
        b"fail"
    } else if !node.is_primary() {
        // A replica with replication offset 0.
        b"loading"
    } else {
        b"online"
    };
    w.bulk(health);
}

/// On the slot's shard: COUNTKEYSINSLOT in the client's database.
fn countkeysinslot_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let slot = parse_i64(argv[2]).unwrap_or(0) as u16;
    let n = ctx.shard.keyspace.db(ctx.db).keys_in_slot(slot);
    reply(ctx, |w| w.int(n as i64))
}

/// On the slot's shard: GETKEYSINSLOT from the slot's own key list.
fn getkeysinslot_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let slot = parse_i64(argv[2]).unwrap_or(0) as u16;
    let count = usize::try_from(parse_i64(argv[3]).unwrap_or(0)).unwrap_or(0);
    let db = ctx.shard.keyspace.db(ctx.db);
    let n = db.keys_in_slot(slot).min(count);
    let mut out = Vec::new();
    let mut w = ReplyWriter::new(&mut out, ctx.proto);
    w.array(n);
    for (key, _) in db.slot_entries(slot).take(n) {
        w.bulk(key);
    }
    Partial::Encoded(out)
}

/// Valkey's `checkSlotAssignmentsOrReply` over `slots`, marking each in `seen`.
fn check_slots(
    st: &ClusterState,
    seen: &mut [bool],
    del: bool,
    slots: impl Iterator<Item = u16>,
) -> Result<(), String> {
    for s in slots {
        let owner = st.owner[usize::from(s)];
        if del && owner == NO_OWNER {
            return Err(format!("ERR Slot {s} is already unassigned"));
        }
        if !del && owner != NO_OWNER {
            return Err(format!("ERR Slot {s} is already busy"));
        }
        if std::mem::replace(&mut seen[usize::from(s)], true) {
            return Err(format!("ERR Slot {s} specified multiple times"));
        }
    }
    Ok(())
}

/// Valkey's `clusterUpdateSlots`: an added slot stops being imported.
fn update_slots(st: &mut ClusterState, seen: &[bool], del: bool) {
    for (s, _) in seen.iter().enumerate().filter(|(_, on)| **on) {
        st.importing.remove(&(s as u16));
        st.owner[s] = if del { NO_OWNER } else { st.myself as u16 };
    }
}

fn addslots(ctx: &Ctx, argv: &[&[u8]], del: bool) -> Partial {
    let mut slots = Vec::with_capacity(argv.len() - 2);
    for a in &argv[2..] {
        match slot_arg(a) {
            Ok(s) => slots.push(s),
            Err(e) => return error(ctx, e),
        }
    }
    let r = change(ctx, |st| {
        let mut seen = vec![false; usize::from(SLOTS)];
        check_slots(st, &mut seen, del, slots.iter().copied())?;
        update_slots(st, &seen, del);
        Ok(())
    });
    ok_or_error(ctx, r)
}

fn addslotsrange(ctx: &Ctx, argv: &[&[u8]], del: bool) -> Partial {
    if argv.len() % 2 == 1 {
        let name = if del {
            "cluster|delslotsrange"
        } else {
            "cluster|addslotsrange"
        };
        return reply(ctx, |w| super::wrong_arity(name, w));
    }
    let mut ranges = Vec::with_capacity(argv.len() / 2);
    for pair in argv[2..].chunks_exact(2) {
        let (a, b) = match (slot_arg(pair[0]), slot_arg(pair[1])) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return error(ctx, e),
        };
        if a > b {
            return error(
                ctx,
                &format!("ERR start slot number {a} is greater than end slot number {b}"),
            );
        }
        ranges.push((a, b));
    }
    let r = change(ctx, |st| {
        let mut seen = vec![false; usize::from(SLOTS)];
        for &(a, b) in &ranges {
            check_slots(st, &mut seen, del, a..=b)?;
        }
        update_slots(st, &seen, del);
        Ok(())
    });
    ok_or_error(ctx, r)
}

/// FLUSHSLOTS visits shards 0, 1, ... in turn; database 0 must be empty on each (as
/// Valkey checks its database 0); the last one releases the slots.
fn flushslots_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if !ctx.shard.keyspace.db(0).is_empty() {
        return error(ctx, "ERR DB must be empty to perform CLUSTER FLUSHSLOTS.");
    }
    let next = ctx.shard.id + 1;
    if next < ctx.shard.shards {
        return hop(next, flushslots_step, argv.iter().copied());
    }
    let r = change(ctx, |st| {
        let me = st.myself as u16;
        for o in &mut st.owner {
            if *o == me {
                *o = NO_OWNER;
            }
        }
        Ok(())
    });
    ok_or_error(ctx, r)
}

fn setslot(ctx: &Ctx, argv: &[&[u8]]) -> Partial {
    let slot = match slot_arg(argv[2]) {
        Ok(s) => s,
        Err(e) => return error(ctx, e),
    };
    // The rest needs the slot's key count: continue on the slot's shard.
    hop(
        shard_of_slot(slot, ctx.shard.shards),
        setslot_step,
        argv.iter().copied(),
    )
}

/// CLUSTER SETSLOT <slot> IMPORTING|MIGRATING|NODE <node-id> | STABLE, on the slot's
/// shard (Valkey's `clusterParseSetSlotCommand` and `clusterCommandSetSlot`).
fn setslot_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    const INVALID: &str =
        "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP";
    let slot = slot_arg(argv[2]).unwrap_or(0);
    let action = argv[3].to_ascii_lowercase();
    let needs_node = matches!(action.as_slice(), b"migrating" | b"importing" | b"node");
    let (optional_from, valid) = match action.as_slice() {
        b"stable" => (4, true),
        _ if needs_node => (5, argv.len() >= 5),
        _ => (0, false),
    };
    if !valid {
        return error(ctx, INVALID);
    }
    // Optional arguments: TIMEOUT <ms> (replication to replicas, which percore has none of).
    let mut i = optional_from;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"timeout") {
            let Some(t) = argv.get(i + 1) else {
                return error(ctx, "ERR Missing timeout value");
            };
            match parse_i64(t) {
                Some(v) if v >= 0 => {}
                Some(_) => return error(ctx, "ERR timeout is negative"),
                None => return error(ctx, "ERR timeout is not an integer or out of range"),
            }
            i += 1;
        }
        i += 1;
    }
    let keys_here = ctx.shard.keyspace.keys_in_slot(slot);
    let id = argv.get(4).copied().unwrap_or_default();
    let shared = std::sync::Arc::clone(&ctx.shard.shared);
    let r = change(ctx, |st| {
        let s = usize::from(slot);
        let mine = usize::from(st.owner[s]) == st.myself;
        // Valkey's order of checks: ownership, then the node, then its role.
        if action == b"migrating" && !mine {
            return Err(format!("ERR I'm not the owner of hash slot {slot}"));
        }
        if action == b"importing" && mine {
            return Err(format!("ERR I'm already the owner of hash slot {slot}"));
        }
        let target = if needs_node {
            let Some(n) = st.find(id) else {
                return Err(if action == b"node" {
                    unknown_node(id)
                } else {
                    format!(
                        "ERR I don't know about node {}",
                        String::from_utf8_lossy(id)
                    )
                });
            };
            if !st.nodes[n].is_primary() {
                return Err("ERR Target node is not a master".to_owned());
            }
            if action == b"node" && mine && n != st.myself && keys_here != 0 {
                return Err(format!(
                    "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                ));
            }
            n
        } else {
            st.myself
        };
        match action.as_slice() {
            b"migrating" => {
                shared.notice(&format!(
                    "Migrating slot {slot} to node {}",
                    st.nodes[target].id
                ));
                st.migrating.insert(slot, target);
            }
            b"importing" => {
                shared.notice(&format!(
                    "Importing slot {slot} from node {}",
                    st.nodes[target].id
                ));
                st.importing.insert(slot, target);
            }
            b"stable" => {
                shared.notice(&format!("Marking slot {slot} stable"));
                st.importing.remove(&slot);
                st.migrating.remove(&slot);
            }
            _ => {
                shared.notice(&format!(
                    "Assigning slot {slot} to node {}",
                    st.nodes[target].id
                ));
                if keys_here == 0 {
                    st.migrating.remove(&slot);
                }
                let was_mine = mine;
                st.owner[s] = target as u16;
                if was_mine && target != st.myself && st.slot_count(st.myself) == 0 {
                    // Valkey would make this node a replica of `target`; percore has no
                    // replication, so it stays an empty primary.
                    shared.notice(&format!(
                        "My last slot was migrated to node {}. I am now an empty primary.",
                        st.nodes[target].id
                    ));
                }
                if target == st.myself && st.importing.remove(&slot).is_some() && st.bump_epoch() {
                    shared.notice(&format!("ConfigEpoch updated after importing slot {slot}"));
                }
            }
        }
        Ok(())
    });
    ok_or_error(ctx, r)
}

fn set_config_epoch(ctx: &Ctx, argv: &[&[u8]]) -> Partial {
    let Some(epoch) = parse_i64(argv[2]) else {
        return error(ctx, errors::NOT_INTEGER);
    };
    if epoch < 0 {
        return error(ctx, &format!("ERR Invalid config epoch specified: {epoch}"));
    }
    let shared = std::sync::Arc::clone(&ctx.shard.shared);
    let r = change(ctx, |st| {
        if st.nodes.len() > 1 {
            return Err("ERR The user can assign a config epoch only when the node does not know any other node.".to_owned());
        }
        if st.me().config_epoch != 0 {
            return Err("ERR Node config epoch is already non-zero".to_owned());
        }
        let epoch = epoch as u64;
        let me = st.myself;
        st.nodes[me].config_epoch = epoch;
        st.current_epoch = st.current_epoch.max(epoch);
        shared.notice(&format!(
            "configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH"
        ));
        Ok(())
    });
    ok_or_error(ctx, r)
}

fn forget(ctx: &Ctx, argv: &[&[u8]]) -> Partial {
    let id = argv[2];
    let shared = std::sync::Arc::clone(&ctx.shard.shared);
    let r = change(ctx, |st| {
        let Some(n) = st.find(id) else {
            return Err(unknown_node(id));
        };
        if n == st.myself {
            return Err("ERR I tried hard but I can't forget myself...".to_owned());
        }
        if st.me().primary.as_deref().map(str::as_bytes) == Some(id) {
            return Err("ERR Can't forget my master!".to_owned());
        }
        shared.notice(&format!(
            "Cluster forget {} (user request).",
            String::from_utf8_lossy(id)
        ));
        st.remove_node(n);
        Ok(())
    });
    ok_or_error(ctx, r)
}

fn replicas(ctx: &Ctx, argv: &[&[u8]]) -> Partial {
    let st = view(ctx).expect("cluster mode");
    let Some(n) = st.find(argv[2]) else {
        return error(ctx, &unknown_node(argv[2]));
    };
    if !st.nodes[n].is_primary() {
        return error(ctx, "ERR The specified node is not a master");
    }
    let id = st.nodes[n].id.clone();
    let lines: Vec<String> = (0..st.nodes.len())
        .filter(|&i| st.nodes[i].primary.as_deref() == Some(id.as_str()))
        .map(|i| node_line(&st, i, false))
        .collect();
    reply(ctx, |w| {
        w.array(lines.len());
        for l in &lines {
            w.bulk(l.as_bytes());
        }
    })
}

/// CLUSTER RESET [HARD|SOFT]: validated here, done at the cancel barrier (every save in
/// flight is cancelled first; the keys check and the state change happen there).
fn reset(ctx: &Ctx, argv: &[&[u8]]) -> Partial {
    let hard = match argv.get(2) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"hard") => true,
        Some(a) if a.eq_ignore_ascii_case(b"soft") => false,
        Some(_) => return error(ctx, errors::SYNTAX),
    };
    if argv.len() > 3 {
        return reply(ctx, |w| syntax_error(argv, w));
    }
    Partial::Defer(crate::snapshot::Op::ClusterReset {
        hard,
        checked: false,
    })
}

/// Valkey's `addReplySubcommandSyntaxError`.
fn syntax_error(argv: &[&[u8]], w: &mut ReplyWriter) {
    w.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLUSTER HELP.",
        super::trunc_lossy(argv[1], 128)
    ));
}

/// ASKING: the next command may use a slot this node is importing.
pub fn asking(ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    if !ctx.shard.cfg.cluster_enabled {
        w.error(CLUSTER_DISABLED);
        return;
    }
    if let Some(c) = ctx.client.as_deref_mut() {
        c.asking = true;
    }
    w.ok();
}

/// READONLY: accepted (as Valkey, also outside cluster mode); it matters only for
/// replicas, which percore does not have yet.
pub fn readonly(ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    if let Some(c) = ctx.client.as_deref_mut() {
        c.readonly = true;
    }
    w.ok();
}

pub fn readwrite(ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    if let Some(c) = ctx.client.as_deref_mut() {
        c.readonly = false;
    }
    w.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_arguments_follow_valkey() {
        assert_eq!(slot_arg(b"0"), Ok(0));
        assert_eq!(slot_arg(b"16383"), Ok(16383));
        assert!(slot_arg(b"16384").is_err());
        assert!(slot_arg(b"-1").is_err());
        assert!(slot_arg(b"x").is_err());
        assert!(crate::cluster::nodes_conf::valid_node_id(
            b"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"
        ));
    }

    #[test]
    fn runs_group_contiguous_owners() {
        let mut st = ClusterState::fresh();
        st.owner[0..10].fill(0);
        st.owner[20] = 0;
        st.owner[16383] = 0;
        assert_eq!(
            owner_runs(&st),
            vec![(0, 9, 0), (20, 20, 0), (16383, 16383, 0)]
        );
        let mut seen = vec![false; usize::from(SLOTS)];
        assert_eq!(
            check_slots(&st, &mut seen, false, [30u16, 31, 30].into_iter()),
            Err("ERR Slot 30 specified multiple times".to_owned())
        );
        let mut seen = vec![false; usize::from(SLOTS)];
        assert_eq!(
            check_slots(&st, &mut seen, false, [5u16].into_iter()),
            Err("ERR Slot 5 is already busy".to_owned())
        );
        let mut seen = vec![false; usize::from(SLOTS)];
        assert_eq!(
            check_slots(&st, &mut seen, true, [15u16].into_iter()),
            Err("ERR Slot 15 is already unassigned".to_owned())
        );
    }
}
