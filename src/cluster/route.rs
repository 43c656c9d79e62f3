//! Where a keyed request may run in cluster mode (Valkey's `getNodeByQuery` and
//! `clusterRedirectClient`): served here, refused with MOVED / CROSSSLOT / CLUSTERDOWN, or
//! — for a slot being migrated or imported — decided on the shard that owns the slot by
//! whether the keys exist (ASK / TRYAGAIN), then run there.
//!
//! Each shard keeps a [`ShardView`]: the owner of every slot and the open slots, copied
//! from the shared [`ClusterState`](super::ClusterState) when its generation moves, so
//! the check per request reads no lock.

use super::{ClusterState, NO_OWNER};
use crate::client::Client;
use crate::commands::{self, Command, Ctx, Exec, Gather, PartFn, Partial, flags};
use crate::shard::{Argv, ShardData};
use percore_engine::slot::{SLOTS, key_hash_slot, shard_of_slot};
use percore_net::resp::ReplyWriter;
use std::collections::BTreeMap;

pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
pub const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";
pub const DOWN: &str = "CLUSTERDOWN The cluster is down";
pub const DOWN_READ_ONLY: &str = "CLUSTERDOWN The cluster is down and only accepts read commands";
pub const UNBOUND: &str = "CLUSTERDOWN Hash slot not served";

/// A shard's copy of what routing needs.
pub struct ShardView {
    generation: u64,
    /// Per slot: owner index, or [`NO_OWNER`].
    owner: Box<[u16]>,
    myself: u16,
    /// `ip:port` of each node, for MOVED and ASK.
    addrs: Vec<String>,
    migrating: BTreeMap<u16, u16>,
    importing: BTreeMap<u16, u16>,
    /// Every slot served by a node not flagged failed.
    covered: bool,
    quorum: bool,
}

impl ShardView {
    fn build(st: &ClusterState, generation: u64) -> Self {
        Self {
            generation,
            owner: st.owner.clone().into_boxed_slice(),
            myself: st.myself as u16,
            addrs: st
                .nodes
                .iter()
                .map(|n| format!("{}:{}", n.ip, n.port))
                .collect(),
            migrating: st.migrating.iter().map(|(&s, &n)| (s, n as u16)).collect(),
            importing: st.importing.iter().map(|(&s, &n)| (s, n as u16)).collect(),
            covered: st.covered(),
            quorum: st.has_quorum(),
        }
    }

    /// An empty view that the first request replaces (boxed: it lives in every shard's
    /// data, where most servers never use it).
    #[expect(clippy::unnecessary_box_returns, reason = "stored boxed in ShardData")]
    pub fn stale() -> Box<Self> {
        Box::new(Self {
            generation: 0,
            owner: vec![NO_OWNER; usize::from(SLOTS)].into_boxed_slice(),
            myself: 0,
            addrs: Vec::new(),
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            covered: false,
            quorum: false,
        })
    }

    fn healthy(&self, require_full_coverage: bool) -> bool {
        self.quorum && (self.covered || !require_full_coverage)
    }

    fn moved(&self, kind: &str, slot: u16, node: u16) -> String {
        format!("{kind} {slot} {}", self.addrs[usize::from(node)])
    }
}

/// Brings this shard's view up to date with the cluster state (one atomic load when
/// nothing changed).
#[inline]
fn refresh(data: &mut ShardData) {
    let (Some(cluster), Some(view)) = (data.shared.cluster.as_ref(), data.cluster.as_deref_mut())
    else {
        return;
    };
    let g = cluster.generation();
    if view.generation != g {
        *view = ShardView::build(&cluster.read(), g);
    }
}

/// What a request gets in cluster mode.
pub enum Route {
    /// Runs as usual.
    Serve,
    /// Refused with this error text.
    Refuse(String),
    /// The slot is open (migrating / importing with ASKING): run this step as an
    /// [`Exec::Hop`] instead; it decides on the slot's shard.
    Step(PartFn),
}

/// The slot all keys of the request hash to: `Ok(None)` without keys, `Err` across slots.
fn request_slot(cmd: &Command, argv: &[&[u8]]) -> Result<Option<u16>, ()> {
    let mut slot = None;
    for p in cmd.keys_of(argv) {
        let s = key_hash_slot(argv[p]);
        match slot {
            None => slot = Some(s),
            Some(x) if x != s => return Err(()),
            Some(_) => {}
        }
    }
    Ok(slot)
}

/// The cluster check of one request (called by dispatch only in cluster mode). Consumes
/// the client's ASKING flag, as Valkey resets it after every command but ASKING.
pub fn route(
    data: &mut ShardData,
    client: &mut Client,
    cmd: &'static Command,
    argv: &[&[u8]],
) -> Route {
    let asking = std::mem::take(&mut client.asking) || cmd.has(flags::ASKING);
    if !cmd.has_keys() {
        return Route::Serve;
    }
    let slot = match request_slot(cmd, argv) {
        Ok(Some(s)) => s,
        Ok(None) => return Route::Serve,
        Err(()) => return Route::Refuse(CROSSSLOT.to_owned()),
    };
    refresh(data);
    let (require_full, reads_when_down) = (
        data.cfg.cluster_require_full_coverage,
        data.cfg.cluster_allow_reads_when_down,
    );
    let Some(view) = data.cluster.as_deref() else {
        return Route::Serve;
    };
    let owner = view.owner[usize::from(slot)];
    if owner == NO_OWNER {
        return Route::Refuse(UNBOUND.to_owned());
    }
    let migrating = owner == view.myself && view.migrating.contains_key(&slot);
    let importing = !migrating && view.importing.contains_key(&slot);
    if !view.healthy(require_full) {
        if !reads_when_down {
            return Route::Refuse(DOWN.to_owned());
        }
        if cmd.has(flags::WRITE) {
            return Route::Refuse(DOWN_READ_ONLY.to_owned());
        }
    }
    if migrating {
        return Route::Step(open_slot_step::<false>);
    }
    if importing && asking {
        return Route::Step(open_slot_step::<true>);
    }
    if owner != view.myself {
        return Route::Refuse(view.moved("MOVED", slot, owner));
    }
    Route::Serve
}

/// First step of a request on an open slot: continue on the shard that holds the slot.
fn open_slot_step<const ASKING: bool>(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let cmd = commands::lookup(argv[0]).expect("routed commands are in the table");
    let slot = request_slot(cmd, argv).ok().flatten().unwrap_or(0);
    Partial::Hop {
        shard: shard_of_slot(slot, ctx.shard.shards),
        step: open_slot_run::<ASKING>,
        argv: Argv::from_slices(argv),
    }
}

fn encoded_error(ctx: &Ctx, text: &str) -> Partial {
    let mut out = Vec::new();
    ReplyWriter::new(&mut out, ctx.proto).error(text);
    Partial::Encoded(out)
}

/// On the slot's shard: count the request's keys that exist, answer ASK / TRYAGAIN /
/// MOVED as Valkey does for an open slot, or run the command here.
fn open_slot_run<const ASKING: bool>(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let cmd = commands::lookup(argv[0]).expect("routed commands are in the table");
    let Ok(Some(slot)) = request_slot(cmd, argv) else {
        return run_local(ctx, cmd, argv);
    };
    refresh(ctx.shard);
    let Some(view) = ctx.shard.cluster.as_deref() else {
        return run_local(ctx, cmd, argv);
    };
    let owner = view.owner[usize::from(slot)];
    let migrating_to = (owner == view.myself)
        .then(|| view.migrating.get(&slot).copied())
        .flatten();
    let importing = migrating_to.is_none() && view.importing.contains_key(&slot);
    let moved =
        (owner != NO_OWNER && owner != view.myself).then(|| view.moved("MOVED", slot, owner));
    let ask = migrating_to.map(|to| view.moved("ASK", slot, to));
    let (mut missing, mut existing, mut multiple) = (0usize, 0usize, false);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let mut first: Option<&[u8]> = None;
    for p in cmd.keys_of(argv) {
        let key = argv[p];
        match first {
            None => first = Some(key),
            Some(f) if f != key => multiple = true,
            Some(_) => {}
        }
        if db.contains(key, now) {
            existing += 1;
        } else {
            missing += 1;
        }
    }
    if (migrating_to.is_some() || importing) && cmd.name == "move" {
        // Valkey: MOVE's destination may exist on the other node.
        return encoded_error(ctx, TRYAGAIN);
    }
    if let Some(ask) = ask
        && missing > 0
    {
        return encoded_error(ctx, if existing > 0 { TRYAGAIN } else { &ask });
    }
    if importing && ASKING {
        if multiple && missing > 0 {
            return encoded_error(ctx, TRYAGAIN);
        }
        return run_local(ctx, cmd, argv);
    }
    if let Some(moved) = moved {
        return encoded_error(ctx, &moved);
    }
    run_local(ctx, cmd, argv)
}

/// Runs a command whose keys all live on this shard, as dispatch would, and returns its
/// reply.
fn run_local(ctx: &mut Ctx, cmd: &'static Command, argv: &[&[u8]]) -> Partial {
    let mut out = Vec::new();
    match cmd.exec {
        Exec::Keyed(h) => {
            h(ctx, argv, &mut ReplyWriter::new(&mut out, ctx.proto));
            Partial::Encoded(out)
        }
        Exec::Split { part, merge } => {
            let step = cmd.step.max(1) as usize;
            let positions: Vec<usize> = cmd.key_positions(argv.len()).collect();
            let mut sub: Vec<&[u8]> = vec![argv[0]];
            for &p in &positions {
                sub.extend_from_slice(&argv[p..(p + step).min(argv.len())]);
            }
            let shards = ctx.shard.shards;
            let me = ctx.shard.id;
            let mut gather = Gather {
                cmd,
                parts: (0..shards).map(|_| None).collect(),
                key_map: vec![Vec::new(); shards],
                nkeys: positions.len(),
                remaining: 0,
                argv: argv.iter().map(|a| a.to_vec()).collect(),
                discard: false,
                proto: ctx.proto,
            };
            gather.key_map[me] = (0..positions.len() as u32).collect();
            gather.parts[me] = Some(part(ctx, &sub));
            merge(&mut gather, &mut ReplyWriter::new(&mut out, ctx.proto));
            Partial::Encoded(out)
        }
        Exec::Hop(first) => {
            let mut result = first(ctx, argv);
            loop {
                match result {
                    Partial::Hop { shard, step, argv } if shard == ctx.shard.id => {
                        let mut args = Vec::new();
                        argv.fill(&mut args);
                        result = step(ctx, &args);
                    }
                    other => return other,
                }
            }
        }
        Exec::Client(_) | Exec::All { .. } | Exec::Multi(_) => {
            encoded_error(ctx, "ERR internal error: a keyless command on an open slot")
        }
    }
}
