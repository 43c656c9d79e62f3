//! nodes.conf in Valkey's format: the CLUSTER NODES lines with each node's aux fields
//! (`ip:port@cport,hostname,tls-port=0,shard-id=...`), then
//! `vars currentEpoch <n> lastVoteEpoch <n>`. Written atomically (temp file, fsync,
//! rename, fsync of the directory) as Valkey's `clusterSaveConfig`; parsed as Valkey's
//! `clusterLoadConfig`, except that anything it would skip or panic on is an error here
//! that names the line.

use super::{ClusterState, NO_OWNER, Node, flags};
use percore_engine::slot::SLOTS;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;

/// Node ids and shard ids: 40 characters `[a-z0-9]` (Valkey's `CLUSTER_NAMELEN`).
pub const NODE_ID_LEN: usize = 40;
/// Valkey's default offset of the cluster bus port from the client port.
pub const CLUSTER_PORT_INCR: u16 = 10000;
/// Aux field names Valkey 8.0-9.1 write; any other name makes the file corrupt, as in
/// Valkey. `tcp-port` and `tls-port` set ports, the others are kept and written back.
const AUX_FIELDS: [&str; 9] = [
    "shard-id",
    "nodename",
    "tcp-port",
    "tls-port",
    "client-ipv4",
    "client-ipv6",
    "client-tcp-port",
    "client-tls-port",
    "availability-zone",
];

/// Valkey's `verifyClusterNodeId`.
pub fn valid_node_id(id: &[u8]) -> bool {
    id.len() == NODE_ID_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Valkey's `isValidAuxChar`: printable, and none of the characters that structure a line.
fn valid_aux(s: &str) -> bool {
    s.bytes()
        .all(|c| c > b',' && c != 0x7f && !b";<=>?@[]^{|}~\\".contains(&c))
}

/// The slot ranges `node` (index `n`) owns, as `start-end` or `slot`, space-separated
/// after a leading space.
fn slot_ranges(st: &ClusterState, n: usize, out: &mut String) {
    let mut start = None;
    for s in 0..=usize::from(SLOTS) {
        let mine = s < usize::from(SLOTS) && usize::from(st.owner[s]) == n;
        match (mine, start) {
            (true, None) => start = Some(s),
            (false, Some(a)) => {
                if a == s - 1 {
                    let _ = write!(out, " {a}");
                } else {
                    let _ = write!(out, " {a}-{}", s - 1);
                }
                start = None;
            }
            _ => {}
        }
    }
}

/// One node line without the trailing newline: CLUSTER NODES's (`for_file` false) or
/// nodes.conf's, which adds the empty hostname and the aux fields after the address.
pub fn node_line(st: &ClusterState, n: usize, for_file: bool) -> String {
    let node = &st.nodes[n];
    let mut line = String::with_capacity(160);
    let _ = write!(line, "{} {}:{}@{}", node.id, node.ip, node.port, node.cport);
    if !node.hostname.is_empty() {
        let _ = write!(line, ",{}", node.hostname);
    }
    if for_file {
        if node.hostname.is_empty() {
            line.push(',');
        }
        // Valkey writes its aux table backwards, skipping the port that is in the address.
        for name in AUX_FIELDS.iter().rev() {
            match *name {
                "tcp-port" => {}
                "tls-port" => {
                    let _ = write!(line, ",tls-port={}", node.tls_port);
                }
                "shard-id" => {
                    let _ = write!(line, ",shard-id={}", node.shard_id);
                }
                _ => {
                    if let Some((_, v)) = node.aux.iter().find(|(k, _)| k == name) {
                        let _ = write!(line, ",{name}={v}");
                    }
                }
            }
        }
    }
    line.push(' ');
    line.push_str(&flags::render(node.flags));
    line.push(' ');
    line.push_str(node.primary.as_deref().unwrap_or("-"));
    let epoch = node
        .primary
        .as_deref()
        .and_then(|p| st.nodes.iter().find(|x| x.id == p))
        .map_or(node.config_epoch, |p| p.config_epoch);
    // Without a cluster bus no link to another node is ever up.
    let link = if n == st.myself {
        "connected"
    } else {
        "disconnected"
    };
    let _ = write!(line, " 0 0 {epoch} {link}");
    slot_ranges(st, n, &mut line);
    if n == st.myself {
        for s in 0..SLOTS {
            if let Some(&to) = st.migrating.get(&s) {
                let _ = write!(line, " [{s}->-{}]", st.nodes[to].id);
            } else if let Some(&from) = st.importing.get(&s) {
                let _ = write!(line, " [{s}-<-{}]", st.nodes[from].id);
            }
        }
    }
    line
}

/// The whole file.
pub fn render(st: &ClusterState) -> String {
    let mut out = String::new();
    for n in 0..st.nodes.len() {
        out.push_str(&node_line(st, n, true));
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "vars currentEpoch {} lastVoteEpoch {}",
        st.current_epoch, st.last_vote_epoch
    );
    out
}

/// Writes `content` to `path` through `<path>.tmp-<pid>-<ms>`: write, fsync, rename,
/// fsync the directory. On error the temp file is removed and `path` is untouched.
pub fn write_durably(path: &Path, content: &[u8]) -> io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        percore_net::reactor::unix_ms()
    ));
    let temp = std::path::PathBuf::from(temp);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(content)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Why a nodes.conf line was refused.
fn bad(what: &str) -> String {
    what.to_owned()
}

fn parse_u64(s: &str, what: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| bad(&format!("{what} '{s}' is not a number")))
}

fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| bad(&format!("{what} '{s}' is not a port number")))
}

fn parse_slot(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(v) if v < SLOTS => Ok(v),
        _ => Err(bad(&format!("slot '{s}' is not in 0-{}", SLOTS - 1))),
    }
}

/// Index of node `id`, adding a placeholder (no address, no flags) if it is new, as
/// Valkey does for a primary or a migration target named before its own line.
fn node_index(st: &mut ClusterState, id: &str) -> Result<usize, String> {
    if !valid_node_id(id.as_bytes()) {
        return Err(bad(&format!("'{id}' is not a node id")));
    }
    if let Some(i) = st.nodes.iter().position(|n| n.id == id) {
        return Ok(i);
    }
    st.nodes.push(Node::placeholder(id));
    Ok(st.nodes.len() - 1)
}

/// Parses a nodes.conf. `Ok(None)` for an empty file (Valkey then starts a new node);
/// `Err` names the line and what is wrong with it.
pub fn parse(text: &str) -> Result<Option<ClusterState>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let mut st = ClusterState::empty();
    let mut myself = None;
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        parse_line(&mut st, &mut myself, line)
            .map_err(|why| format!("line {}: {why}: \"{line}\"", number + 1))?;
    }
    let Some(me) = myself else {
        return Err("no line describes this node (no 'myself' flag)".to_owned());
    };
    st.myself = me;
    let max_epoch = st.nodes.iter().map(|n| n.config_epoch).max().unwrap_or(0);
    st.current_epoch = st.current_epoch.max(max_epoch);
    Ok(Some(st))
}

fn parse_line(st: &mut ClusterState, myself: &mut Option<usize>, line: &str) -> Result<(), String> {
    let argv: Vec<&str> = line.split_ascii_whitespace().collect();
    if argv.is_empty() {
        return Ok(());
    }
    if argv[0].eq_ignore_ascii_case("vars") {
        if argv.len().is_multiple_of(2) {
            return Err(bad("'vars' needs name value pairs"));
        }
        for pair in argv[1..].chunks_exact(2) {
            if pair[0].eq_ignore_ascii_case("currentEpoch") {
                st.current_epoch = parse_u64(pair[1], "currentEpoch")?;
            } else if pair[0].eq_ignore_ascii_case("lastVoteEpoch") {
                st.last_vote_epoch = parse_u64(pair[1], "lastVoteEpoch")?;
            }
            // Valkey skips unknown variables with a notice.
        }
        return Ok(());
    }
    if argv.len() < 8 {
        return Err(bad("a node line has at least 8 fields"));
    }
    let n = node_index(st, argv[0])?;
    let mut fields = argv[1].split(',');
    let address = fields.next().unwrap_or_default();
    let hostname = fields.next().unwrap_or_default();
    let mut aux = Vec::new();
    let (mut tcp_port, mut tls_port) = (None, None);
    for field in fields {
        let Some((k, v)) = field.split_once('=') else {
            return Err(bad(&format!("aux field '{field}' is not name=value")));
        };
        if !valid_aux(k) || !valid_aux(v) || v.contains('=') {
            return Err(bad(&format!("aux field '{field}' has invalid characters")));
        }
        match k {
            "shard-id" => {
                if !valid_node_id(v.as_bytes()) {
                    return Err(bad(&format!("shard id '{v}' is not a node id")));
                }
                v.clone_into(&mut st.nodes[n].shard_id);
            }
            "tcp-port" => tcp_port = Some(parse_port(v, "tcp-port")?),
            "tls-port" => tls_port = Some(parse_port(v, "tls-port")?),
            k if AUX_FIELDS.contains(&k) => {
                if !v.is_empty() {
                    aux.push((k.to_owned(), v.to_owned()));
                }
            }
            _ => return Err(bad(&format!("unknown aux field '{k}'"))),
        }
    }
    let Some((ip, ports)) = address.rsplit_once(':') else {
        return Err(bad(&format!("address '{address}' has no port")));
    };
    let (port, cport) = match ports.split_once('@') {
        Some((p, c)) => (parse_port(p, "port")?, Some(parse_port(c, "bus port")?)),
        None => (parse_port(ports, "port")?, None),
    };
    {
        let node = &mut st.nodes[n];
        ip.clone_into(&mut node.ip);
        hostname.clone_into(&mut node.hostname);
        node.aux = aux;
        node.port = tcp_port.unwrap_or(port);
        node.tls_port = tls_port.unwrap_or(0);
        node.cport = cport.unwrap_or_else(|| node.port.saturating_add(CLUSTER_PORT_INCR));
    }
    for flag in argv[2].split(',') {
        let bit = flags::parse(flag).ok_or_else(|| bad(&format!("unknown flag '{flag}'")))?;
        if bit == flags::MYSELF {
            if myself.is_some_and(|m| m != n) {
                return Err(bad("a second node has the 'myself' flag"));
            }
            *myself = Some(n);
        }
        st.nodes[n].flags |= bit;
    }
    if argv[3] != "-" {
        let p = node_index(st, argv[3])?;
        st.nodes[n].primary = Some(st.nodes[p].id.clone());
    }
    parse_u64(argv[4], "ping time")?;
    parse_u64(argv[5], "pong time")?;
    let epoch = parse_u64(argv[6], "config epoch")?;
    st.nodes[n].config_epoch = if st.nodes[n].flags & flags::SLAVE != 0 && argv[3] != "-" {
        0
    } else {
        epoch
    };
    for spec in &argv[8..] {
        if let Some(open) = spec.strip_prefix('[') {
            let Some(open) = open.strip_suffix(']') else {
                return Err(bad(&format!("open slot '{spec}' lacks ']'")));
            };
            let (slot, dir, id) = if let Some((s, id)) = open.split_once("->-") {
                (s, '>', id)
            } else if let Some((s, id)) = open.split_once("-<-") {
                (s, '<', id)
            } else {
                return Err(bad(&format!("open slot '{spec}' is malformed")));
            };
            let slot = parse_slot(slot)?;
            let other = node_index(st, id)?;
            if dir == '>' {
                st.migrating.insert(slot, other);
            } else {
                st.importing.insert(slot, other);
            }
            continue;
        }
        let (a, b) = if let Some((a, b)) = spec.split_once('-') {
            (parse_slot(a)?, parse_slot(b)?)
        } else {
            let s = parse_slot(spec)?;
            (s, s)
        };
        for s in a..=b {
            // As Valkey's clusterAddSlot: a slot already taken by an earlier line stays.
            if st.owner[usize::from(s)] == NO_OWNER {
                st.owner[usize::from(s)] = n as u16;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca";
    const OTHER: &str = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1";
    const SHARD: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn round_trip_keeps_every_field() {
        let text = format!(
            "{ME} 127.0.0.1:30001@40001,,tls-port=0,shard-id={SHARD} myself,master - 0 0 3 connected 0-5460 5462 [5463->-{OTHER}] [9000-<-{OTHER}]\n\
             {OTHER} 10.0.0.2:30002@40002,host2,tls-port=0,nodename=n2,shard-id={SHARD} master - 0 0 2 disconnected 5461 5463-16383\n\
             vars currentEpoch 3 lastVoteEpoch 1\n"
        );
        let st = parse(&text).unwrap().unwrap();
        assert_eq!(st.nodes.len(), 2);
        assert_eq!(st.myself, 0);
        assert_eq!(st.nodes[0].id, ME);
        assert_eq!(st.nodes[0].port, 30001);
        assert_eq!(st.nodes[0].cport, 40001);
        assert_eq!(st.nodes[1].hostname, "host2");
        assert_eq!(st.nodes[1].ip, "10.0.0.2");
        assert_eq!(st.owner[5461], 1);
        assert_eq!(st.owner[5462], 0);
        assert_eq!(st.owner[0], 0);
        assert_eq!(st.owner[16383], 1);
        assert_eq!(st.migrating.get(&5463), Some(&1));
        assert_eq!(st.importing.get(&9000), Some(&1));
        assert_eq!((st.current_epoch, st.last_vote_epoch), (3, 1));
        assert_eq!(render(&st), text);
        // CLUSTER NODES shows neither the aux fields nor the empty hostname.
        assert_eq!(
            node_line(&st, 0, false),
            format!(
                "{ME} 127.0.0.1:30001@40001 myself,master - 0 0 3 connected 0-5460 5462 [5463->-{OTHER}] [9000-<-{OTHER}]"
            )
        );
        assert_eq!(
            node_line(&st, 1, false),
            format!(
                "{OTHER} 10.0.0.2:30002@40002,host2 master - 0 0 2 disconnected 5461 5463-16383"
            )
        );
    }

    #[test]
    fn older_formats_load() {
        // Redis 7.0: no aux fields, no hostname; Redis 3.x-4.x: no bus port.
        let text = format!(
            "{ME} :6379@16379 myself,master - 0 0 0 connected 0-16383\n{OTHER} 1.2.3.4:7000 slave {ME} 0 0 9 connected\nvars currentEpoch 0 lastVoteEpoch 0\n"
        );
        let st = parse(&text).unwrap().unwrap();
        assert_eq!(st.nodes[0].ip, "");
        assert_eq!(st.nodes[1].cport, 17000);
        assert_eq!(st.nodes[1].primary.as_deref(), Some(ME));
        assert_eq!(
            st.nodes[1].config_epoch, 0,
            "a replica's epoch is its primary's"
        );
        assert_eq!(st.nodes[0].shard_id.len(), NODE_ID_LEN);
        // Blank lines are skipped; an empty file is a new node.
        assert!(parse(&format!("\n{text}\n")).unwrap().is_some());
        assert!(parse("").unwrap().is_none());
        // currentEpoch is at least the largest config epoch.
        let st = parse(&format!(
            "{ME} :1@2 myself,master - 0 0 7 connected\nvars currentEpoch 2 lastVoteEpoch 0\n"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(st.current_epoch, 7);
    }

    #[test]
    fn corrupt_files_are_refused_with_the_line() {
        let good = format!("{ME} 127.0.0.1:7000@17000 myself,master - 0 0 0 connected");
        let cases = [
            ("garbage here\n".to_owned(), "at least 8 fields"),
            (
                format!("{OTHER} 127.0.0.1:7000@17000 master - 0 0 0 connected\n"),
                "no 'myself'",
            ),
            (format!("{good} 99999\n"), "slot '99999'"),
            (format!("{good} 5-x\n"), "slot 'x'"),
            (
                good.replace("myself,master", "myself,wizard") + "\n",
                "unknown flag",
            ),
            (good.replace(ME, "tooshort") + "\n", "not a node id"),
            (
                good.replace("17000", "17000,,bogus=1") + "\n",
                "unknown aux field",
            ),
            (
                good.replace("17000", "17000,,shard-id") + "\n",
                "name=value",
            ),
            (good.replace(":7000@", ":70x0@") + "\n", "not a port"),
            (good.replace(" 0 0 0 ", " 0 0 x ") + "\n", "config epoch"),
            (format!("{good}\nvars currentEpoch\n"), "name value pairs"),
            (
                format!("{good}\nvars currentEpoch z lastVoteEpoch 0\n"),
                "currentEpoch",
            ),
            (format!("{good} [5->-{OTHER}\n"), "lacks ']'"),
            (
                format!("{good}\n{}\n", good.replace(ME, OTHER)),
                "second node",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text)
                .err()
                .unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn durable_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("percore-nodes-conf-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.conf");
        write_durably(&path, b"one\n").unwrap();
        write_durably(&path, b"two\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
        assert!(write_durably(&dir.join("missing/nodes.conf"), b"x").is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
