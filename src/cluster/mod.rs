//! Cluster mode (`cluster-enabled yes`): slot ownership, redirections, CLUSTER commands,
//! nodes.conf. Until it is built, CLUSTER answers as a node with cluster support disabled.

use crate::shard::ShardData;

/// Redis's reply to CLUSTER commands when cluster mode is off.
pub const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

/// CLUSTER RESET's state change, run by the coordinator while every shard is parked at
/// the cancel barrier (every save in flight already cancelled). `keys` is the number of
/// keys in all shards' databases. Returns the error text to reply, if any.
pub fn reset_at_barrier(_data: &mut ShardData, _keys: usize, _hard: bool) -> Result<(), String> {
    Err(CLUSTER_DISABLED.to_owned())
}
