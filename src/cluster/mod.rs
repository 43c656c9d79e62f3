//! Cluster mode (`cluster-enabled yes`): the node's view of the cluster (nodes, slot
//! owners, open slots, epochs), kept in [`Cluster`] in the server's shared state and saved
//! to nodes.conf before any reply that depends on a change; the redirections every keyed
//! request passes through ([`route`]); CLUSTER RESET's state change at the cancel barrier.
//!
//! There is no cluster bus: the node knows other nodes only from its nodes.conf, trusts
//! that file's slot map, and never gossips, fails over or moves keys. A node that holds
//! all 16384 slots is a complete cluster for clients and tools.

pub mod nodes_conf;
pub mod route;

use crate::config::Config;
use crate::server::{ServerShared, random_hex40};
use crate::shard::ShardData;
use percore_engine::keyspace::Keyspace;
use percore_engine::slot::SLOTS;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub use route::{Route, ShardView, route};

/// Redis's reply to CLUSTER commands when cluster mode is off.
pub const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";
/// Valkey's refusal to reset a primary that holds keys.
pub const RESET_WITH_KEYS: &str =
    "ERR CLUSTER RESET can't be called with master nodes containing keys";
/// `owner` entry of a slot no node serves.
pub const NO_OWNER: u16 = u16::MAX;

/// Node flags, as CLUSTER NODES prints them.
pub mod flags {
    pub const MYSELF: u16 = 1 << 0;
    pub const MASTER: u16 = 1 << 1;
    pub const SLAVE: u16 = 1 << 2;
    pub const PFAIL: u16 = 1 << 3;
    pub const FAIL: u16 = 1 << 4;
    pub const HANDSHAKE: u16 = 1 << 5;
    pub const NOADDR: u16 = 1 << 6;
    pub const NOFAILOVER: u16 = 1 << 7;

    const NAMES: [(u16, &str); 8] = [
        (MYSELF, "myself"),
        (MASTER, "master"),
        (SLAVE, "slave"),
        (PFAIL, "fail?"),
        (FAIL, "fail"),
        (HANDSHAKE, "handshake"),
        (NOADDR, "noaddr"),
        (NOFAILOVER, "nofailover"),
    ];

    /// `myself,master`, or `noflags`.
    pub fn render(flags: u16) -> String {
        let names: Vec<&str> = NAMES
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            "noflags".to_owned()
        } else {
            names.join(",")
        }
    }

    /// One flag name of a nodes.conf line (with Valkey's aliases); `noflags` is 0.
    pub fn parse(name: &str) -> Option<u16> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "noflags" => Some(0),
            "primary" => Some(MASTER),
            "replica" => Some(SLAVE),
            // Valkey: a node without an address is also failed.
            "noaddr" => Some(NOADDR | FAIL),
            _ => NAMES.iter().find(|(_, n)| *n == lower).map(|(bit, _)| *bit),
        }
    }
}

/// One node as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub tls_port: u16,
    pub hostname: String,
    pub shard_id: String,
    pub flags: u16,
    /// The primary's id, for a replica.
    pub primary: Option<String>,
    pub config_epoch: u64,
    /// Aux fields kept from nodes.conf and written back (`nodename`, `client-ipv4`...).
    pub aux: Vec<(String, String)>,
}

impl Node {
    /// A node named before its own line (a primary, a migration target): no address.
    fn placeholder(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            ip: String::new(),
            port: 0,
            cport: 0,
            tls_port: 0,
            hostname: String::new(),
            shard_id: random_hex40(),
            flags: 0,
            primary: None,
            config_epoch: 0,
            aux: Vec::new(),
        }
    }

    pub fn is_primary(&self) -> bool {
        self.flags & flags::MASTER != 0
    }

    fn failed(&self) -> bool {
        self.flags & flags::FAIL != 0
    }
}

/// The cluster as this node sees it.
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub nodes: Vec<Node>,
    /// Index of this node in `nodes`.
    pub myself: usize,
    /// Per slot: index of the owning node in `nodes`, or [`NO_OWNER`].
    pub owner: Vec<u16>,
    /// Slots this node is moving to another node (CLUSTER SETSLOT MIGRATING).
    pub migrating: BTreeMap<u16, usize>,
    /// Slots this node is receiving from another node (CLUSTER SETSLOT IMPORTING).
    pub importing: BTreeMap<u16, usize>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
}

impl ClusterState {
    fn empty() -> Self {
        Self {
            nodes: Vec::new(),
            myself: 0,
            owner: vec![NO_OWNER; usize::from(SLOTS)],
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
        }
    }

    /// A new node: a primary with a random id and shard id, no slots, epochs 0.
    pub fn fresh() -> Self {
        let mut st = Self::empty();
        let mut me = Node::placeholder(&random_hex40());
        me.flags = flags::MYSELF | flags::MASTER;
        st.nodes.push(me);
        st
    }

    pub fn me(&self) -> &Node {
        &self.nodes[self.myself]
    }

    fn me_mut(&mut self) -> &mut Node {
        let i = self.myself;
        &mut self.nodes[i]
    }

    /// Index of the node with id `id`.
    pub fn find(&self, id: &[u8]) -> Option<usize> {
        self.nodes.iter().position(|n| n.id.as_bytes() == id)
    }

    /// Slots node `n` serves.
    pub fn slot_count(&self, n: usize) -> usize {
        self.owner.iter().filter(|&&o| usize::from(o) == n).count()
    }

    /// Myself's address and ports from the configuration (Valkey's
    /// `deriveAnnouncedPorts` and `cluster-announce-ip`).
    pub fn apply_config(&mut self, cfg: &Config, tcp_port: u16) {
        let port = if cfg.cluster_announce_port == 0 {
            tcp_port
        } else {
            cfg.cluster_announce_port
        };
        let cport = if cfg.cluster_announce_bus_port != 0 {
            cfg.cluster_announce_bus_port
        } else if cfg.cluster_port != 0 {
            cfg.cluster_port
        } else {
            // Valkey refuses ports above 55535 here; without a bus there is nothing to
            // bind, so the field just shows 0.
            port.checked_add(nodes_conf::CLUSTER_PORT_INCR).unwrap_or(0)
        };
        let me = self.me_mut();
        me.port = port;
        me.cport = cport;
        if !cfg.cluster_announce_ip.is_empty() {
            me.ip.clone_from(&cfg.cluster_announce_ip);
        }
    }

    /// Whether every slot is served by a node not flagged as failed.
    pub fn covered(&self) -> bool {
        self.owner
            .iter()
            .all(|&o| o != NO_OWNER && !self.nodes[usize::from(o)].failed())
    }

    /// Whether the primaries serving slots that are not flagged failing are a majority of
    /// them (Valkey's minority-partition rule; with no bus, nodes are failing only when
    /// nodes.conf says so).
    pub fn has_quorum(&self) -> bool {
        let (mut size, mut reachable) = (0usize, 0usize);
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_primary() && self.owner.contains(&(i as u16)) {
                size += 1;
                if n.flags & (flags::FAIL | flags::PFAIL) == 0 {
                    reachable += 1;
                }
            }
        }
        reachable > size / 2
    }

    /// `cluster_state:ok`: a quorum, and full coverage unless `cluster-require-full-coverage
    /// no`.
    pub fn is_ok(&self, require_full_coverage: bool) -> bool {
        self.has_quorum() && (!require_full_coverage || self.covered())
    }

    /// Primaries serving at least one slot (`cluster_size`).
    pub fn size(&self) -> usize {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_primary() && self.owner.contains(&(i as u16)))
            .count()
    }

    /// Valkey's `clusterGetMaxEpoch`.
    fn max_epoch(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch)
    }

    /// Valkey's `clusterBumpConfigEpochWithoutConsensus`: true when the epoch moved.
    pub fn bump_epoch(&mut self) -> bool {
        let max = self.max_epoch();
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            true
        } else {
            false
        }
    }

    /// Removes node `n` (not myself): its slots become unassigned, open slots naming it
    /// close, and indices above it shift down.
    pub fn remove_node(&mut self, n: usize) {
        assert_ne!(n, self.myself, "a node never forgets itself");
        let n16 = n as u16;
        for o in &mut self.owner {
            if *o == n16 {
                *o = NO_OWNER;
            } else if *o != NO_OWNER && *o > n16 {
                *o -= 1;
            }
        }
        for map in [&mut self.migrating, &mut self.importing] {
            map.retain(|_, v| *v != n);
            for v in map.values_mut() {
                if *v > n {
                    *v -= 1;
                }
            }
        }
        let id = self.nodes.remove(n).id;
        for node in &mut self.nodes {
            if node.primary.as_deref() == Some(id.as_str()) {
                node.primary = None;
            }
        }
        if self.myself > n {
            self.myself -= 1;
        }
    }

    /// Valkey's `clusterReset`: slots released, open slots closed, every other node
    /// forgotten, a new shard id (Valkey 9.1); HARD also a new node id and epochs 0.
    pub fn reset(&mut self, hard: bool) {
        self.migrating.clear();
        self.importing.clear();
        self.owner.fill(NO_OWNER);
        let me = self.me().clone();
        self.nodes = vec![me];
        self.myself = 0;
        let me = self.me_mut();
        // A replica becomes a primary (Valkey's clusterSetNodeAsPrimary).
        if me.flags & flags::SLAVE != 0 {
            me.flags = (me.flags & !flags::SLAVE) | flags::MASTER;
            me.primary = None;
        }
        me.shard_id = random_hex40();
        if hard {
            me.id = random_hex40();
            me.config_epoch = 0;
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
        }
    }
}

/// Whether this node is a cluster replica (its data is its primary's: CLUSTER RESET
/// flushes it, as Valkey's clusterReset).
pub fn is_replica(data: &ShardData) -> bool {
    data.shared
        .cluster
        .as_ref()
        .is_some_and(|c| !c.read().me().is_primary())
}

/// The node's cluster state, shared by the shards.
pub struct Cluster {
    state: RwLock<ClusterState>,
    /// Moves on every change; shards rebuild their [`ShardView`] when it does.
    generation: AtomicU64,
    /// nodes.conf (`dir` / `cluster-config-file`).
    path: PathBuf,
}

impl Cluster {
    pub fn new(cfg: &Config) -> Self {
        Self {
            state: RwLock::new(ClusterState::fresh()),
            generation: AtomicU64::new(1),
            path: cfg.dir.join(&cfg.cluster_config_file),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks every shard's view stale (a configuration change may alter what it shows).
    pub fn touch(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> ClusterState {
        self.read().clone()
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, ClusterState> {
        self.state.read().expect("cluster state lock")
    }

    /// Applies `f` to a copy of the state, writes nodes.conf, and only then makes the copy
    /// the state (so a failed write changes nothing). `f`'s error is a reply text.
    pub fn change<T>(
        &self,
        cfg: &Config,
        tcp_port: u16,
        log: &ServerShared,
        f: impl FnOnce(&mut ClusterState) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut st = self.state.write().expect("cluster state lock");
        let mut next = st.clone();
        let out = f(&mut next)?;
        next.apply_config(cfg, tcp_port);
        self.save(&next, log)?;
        let was_ok = st.is_ok(cfg.cluster_require_full_coverage);
        let now_ok = next.is_ok(cfg.cluster_require_full_coverage);
        *st = next;
        drop(st);
        self.touch();
        if was_ok != now_ok {
            let text = if now_ok { "ok" } else { "fail" };
            let msg = format!("Cluster state changed: {text}");
            if now_ok {
                log.notice(&msg);
            } else {
                log.warning(&msg);
            }
        }
        Ok(out)
    }

    /// Writes `st` to nodes.conf durably; the error is Valkey's SAVECONFIG reply.
    fn save(&self, st: &ClusterState, log: &ServerShared) -> Result<(), String> {
        nodes_conf::write_durably(&self.path, nodes_conf::render(st).as_bytes()).map_err(|e| {
            log.warning(&format!(
                "Could not save the cluster config file {}: {e}",
                self.path.display()
            ));
            format!("ERR error saving the cluster node config: {e}")
        })
    }
}

/// Loads nodes.conf, or creates it for a new node, at start-up (Valkey's `clusterInit`).
/// A corrupt file stops start-up: the error names the file, the line and the problem.
pub fn start(shared: &ServerShared) -> Result<(), String> {
    let Some(cluster) = shared.cluster.as_ref() else {
        return Ok(());
    };
    let cfg = shared.config();
    let path = cluster.path();
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            format!(
                "Unrecoverable error: corrupted cluster config file {}: not UTF-8 text",
                path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(format!(
                "Loading the cluster node config from {}: {e}",
                path.display()
            ));
        }
    };
    let loaded = nodes_conf::parse(&text).map_err(|why| {
        format!(
            "Unrecoverable error: corrupted cluster config file {}: {why}",
            path.display()
        )
    })?;
    let mut st = if let Some(st) = loaded {
        shared.notice(&format!("Node configuration loaded, I'm {}", st.me().id));
        st
    } else {
        let st = ClusterState::fresh();
        shared.notice(&format!(
            "No cluster configuration found, I'm {}",
            st.me().id
        ));
        st
    };
    st.apply_config(&cfg, shared.tcp_port());
    cluster
        .save(&st, shared)
        .map_err(|_| format!("Fatal: can't update cluster config file {}", path.display()))?;
    *cluster.state.write().expect("cluster state lock") = st;
    cluster.touch();
    Ok(())
}

/// After the dataset loaded (Valkey's `verifyClusterConfigWithData`): a primary takes
/// unassigned slots it holds keys for, and drops keys of slots another node serves
/// (unless it is importing them); a replica keeps its data as it is.
pub fn adopt_loaded_keys(shared: &ServerShared, keyspaces: &mut [Keyspace]) -> Result<(), String> {
    let Some(cluster) = shared.cluster.as_ref() else {
        return Ok(());
    };
    let cfg = shared.config();
    let st = cluster.snapshot();
    if !st.me().is_primary() {
        // A replica's data is its primary's: Valkey skips the check for replicas.
        return Ok(());
    }
    let mut claim = Vec::new();
    let mut drop_slots = Vec::new();
    for slot in 0..SLOTS {
        let keys: usize = keyspaces.iter().map(|k| k.keys_in_slot(slot)).sum();
        if keys == 0 {
            continue;
        }
        let owner = st.owner[usize::from(slot)];
        if usize::from(owner) == st.myself || st.importing.contains_key(&slot) {
            continue;
        }
        if owner == NO_OWNER {
            shared.notice(&format!(
                "I have keys for unassigned slot {slot}. Taking responsibility for it."
            ));
            claim.push(slot);
        } else {
            shared.notice(&format!(
                "I have keys for slot {slot}, but the slot is assigned to another node. Deleting keys in the slot."
            ));
            drop_slots.push(slot);
        }
    }
    for &slot in &drop_slots {
        for ks in keyspaces.iter_mut() {
            for db in 0..ks.databases() {
                let d = ks.db_mut(db);
                let keys: Vec<Vec<u8>> = d.slot_entries(slot).map(|(k, _)| k.to_vec()).collect();
                for k in keys {
                    d.remove(&k, i64::MIN);
                }
            }
        }
    }
    if claim.is_empty() && drop_slots.is_empty() {
        return Ok(());
    }
    cluster
        .change(&cfg, shared.tcp_port(), shared, |st| {
            for &slot in &claim {
                st.owner[usize::from(slot)] = st.myself as u16;
            }
            Ok(())
        })
        .map_err(|e| format!("Fatal: can't update cluster config file: {e}"))
}

/// CLUSTER RESET's state change, run by the coordinator while every shard is parked at
/// the cancel barrier (every save in flight already cancelled). `keys` is the number of
/// keys in all shards' databases. Returns the error text to reply, if any. nodes.conf is
/// on disk before this returns `Ok`.
pub fn reset_at_barrier(data: &mut ShardData, keys: usize, hard: bool) -> Result<(), String> {
    let Some(cluster) = data.shared.cluster.as_ref() else {
        return Err(CLUSTER_DISABLED.to_owned());
    };
    let shared = &data.shared;
    cluster.change(&data.cfg, shared.tcp_port(), shared, |st| {
        // percore nodes are always primaries; a replica could be reset with its data.
        if st.me().is_primary() && keys > 0 {
            return Err(RESET_WITH_KEYS.to_owned());
        }
        shared.notice("Cluster reset (user request).");
        st.reset(hard);
        if hard {
            shared.notice("configEpoch set to 0 via CLUSTER RESET HARD");
            shared.notice(&format!("Node hard reset, now I'm {}", st.me().id));
        }
        shared.notice(&format!(
            "Moving myself to a new shard {}.",
            st.me().shard_id
        ));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_nodes() -> ClusterState {
        let mut st = ClusterState::fresh();
        let mut other = Node::placeholder(&random_hex40());
        other.flags = flags::MASTER;
        other.config_epoch = 4;
        st.nodes.push(other);
        st.owner[..8192].fill(0);
        st.owner[8192..].fill(1);
        st.migrating.insert(5, 1);
        st.importing.insert(9000, 1);
        st.current_epoch = 4;
        st
    }

    #[test]
    fn state_is_ok_with_coverage_and_quorum() {
        let mut st = ClusterState::fresh();
        assert!(!st.is_ok(true), "no slots: no quorum");
        st.owner[..100].fill(0);
        assert!(!st.is_ok(true));
        assert!(st.is_ok(false));
        st.owner.fill(0);
        assert!(st.is_ok(true));
        assert_eq!(st.size(), 1);
        let mut two = two_nodes();
        assert!(two.is_ok(true));
        two.nodes[1].flags |= flags::FAIL;
        assert!(
            !two.is_ok(true) && !two.is_ok(false),
            "one of two primaries failed"
        );
    }

    #[test]
    fn bump_epoch_follows_valkey() {
        let mut st = ClusterState::fresh();
        assert!(st.bump_epoch());
        assert_eq!((st.me().config_epoch, st.current_epoch), (1, 1));
        assert!(!st.bump_epoch(), "already the largest epoch");
        let mut two = two_nodes();
        two.me_mut().config_epoch = 2;
        assert!(two.bump_epoch());
        assert_eq!(two.me().config_epoch, 5);
    }

    #[test]
    fn remove_and_reset() {
        let mut st = two_nodes();
        st.remove_node(1);
        assert_eq!(st.nodes.len(), 1);
        assert_eq!(st.slot_count(0), 8192);
        assert!(st.migrating.is_empty() && st.importing.is_empty());
        let mut st = two_nodes();
        let (id, shard) = (st.me().id.clone(), st.me().shard_id.clone());
        st.reset(false);
        assert_eq!(st.nodes.len(), 1);
        assert_eq!(st.me().id, id);
        assert_ne!(st.me().shard_id, shard);
        assert_eq!(st.current_epoch, 4);
        assert!(st.owner.iter().all(|&o| o == NO_OWNER));
        st.me_mut().config_epoch = 3;
        st.reset(true);
        assert_ne!(st.me().id, id);
        assert_eq!(
            (st.me().config_epoch, st.current_epoch, st.last_vote_epoch),
            (0, 0, 0)
        );
    }

    #[test]
    fn flags_render_and_parse() {
        assert_eq!(
            flags::render(flags::MYSELF | flags::MASTER),
            "myself,master"
        );
        assert_eq!(flags::render(0), "noflags");
        assert_eq!(flags::parse("replica"), Some(flags::SLAVE));
        assert_eq!(flags::parse("fail?"), Some(flags::PFAIL));
        assert_eq!(flags::parse("bogus"), None);
    }
}
